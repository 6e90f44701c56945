import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  APITimeoutError,
  APIUserAbortError,
  RequestFailedError,
  TinkerValidationError,
} from "../../src/client/errors.js";
import type { ServiceClient, ServiceClientOptions } from "../../src/client/service-client.js";
import type { TrainingClient } from "../../src/client/training-client.js";
import { makeDatum } from "../../src/client/types/datum.js";
import { decodeForwardBackwardRequest } from "../../src/client/wire/proto.js";
import { bodyJson } from "./helpers/fault-server.js";
import { clientFor, MockTinker, tokenLogprob } from "./helpers/mock-tinker.js";

function datum(tokens: number[]) {
  return makeDatum(tokens.slice(0, -1), {
    target_tokens: tokens.slice(1),
    weights: tokens.slice(1).map(() => 1),
  });
}

describe("TrainingClient against a Tinker-like server", () => {
  let mock: MockTinker;
  let service: ServiceClient;
  const open = (extra: ServiceClientOptions = {}) => clientFor(mock, extra);

  beforeEach(async () => {
    mock = await MockTinker.start();
    service = open();
  });
  afterEach(async () => {
    await service.close();
    await mock.close();
  });

  it("bootstraps lazily in the reference order and creates the model", async () => {
    expect(mock.server.requests).toHaveLength(0);
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B", { rank: 8 });
    expect(tc.modelId).toBe("sess-1:train:0");
    const paths = mock.server.requests.map((r) => `${r.method} ${r.path}`);
    expect(paths).toEqual([
      "POST /api/v1/client/config",
      "POST /api/v1/client/dynamic_config",
      "POST /api/v1/create_session",
      "POST /api/v1/create_model",
      "POST /api/v1/retrieve_future",
    ]);
    const [config, , session, create, poll] = mock.server.requests;
    expect(bodyJson(config!)).toEqual({ sdk_version: "0.25.0" });
    expect(bodyJson(session!)).toEqual({
      tags: [],
      user_metadata: {},
      sdk_version: "0.25.0",
      type: "create_session",
    });
    expect(bodyJson(create!)).toEqual({
      session_id: "sess-1",
      model_seq_id: 0,
      base_model: "Qwen/Qwen3-8B",
      lora_config: { rank: 8, train_unembed: true, train_mlp: true, train_attn: true },
      type: "create_model",
    });
    expect(poll!.headers["x-tinker-request-type"]).toBe("CreateModel");
    for (const r of mock.server.requests) expect(r.headers["x-api-key"]).toBe("tml-test-key");
    const tc2 = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    expect(tc2.modelId).toBe("sess-1:train:1");
    expect(mock.server.requestsTo("POST /api/v1/create_session")).toHaveLength(1);
  });

  it("validates inputs before sending", async () => {
    await expect(
      service.createLoraTrainingClient("m", {
        trainMlp: false,
        trainAttn: false,
        trainUnembed: false,
      }),
    ).rejects.toThrow(TinkerValidationError);
    await expect(service.createLoraTrainingClient("m", { rank: 0 })).rejects.toThrow(/rank/);
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    expect(() => tc.forwardBackward([], "cross_entropy")).toThrow(/No data provided/);
    expect(() => tc.forwardBackward([datum([1, 2])], "nope" as "ppo")).toThrow(
      /Unknown loss function "nope"/,
    );
    expect(() => tc.saveState("a/b")).toThrow(TinkerValidationError);
  });

  it("forwardBackward returns the server's logprobs and loss (protobuf)", async () => {
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    const out = await tc.forwardBackward([datum([1, 2, 3, 4]), datum([5, 9, 10])], "cross_entropy");
    const fb = mock.server.requestsTo("POST /api/v1/forward_backward")[0]!;
    expect(fb.headers["content-type"]).toBe("application/x-protobuf");
    const decoded = decodeForwardBackwardRequest(new Uint8Array(fb.body));
    expect(decoded.seqId).toBe(1);
    expect(decoded.forwardOnly).toBe(false);
    expect(decoded.lossFn).toBe("cross_entropy");
    expect(out.lossFnOutputs).toHaveLength(2);
    expect(Array.from(out.lossFnOutputs[0]!.logprobs!.data)).toEqual(
      [2, 3, 4].map((t) => Math.fround(tokenLogprob(t))),
    );
    const expected = [2, 3, 4, 9, 10].reduce((a, t) => a - Math.fround(tokenLogprob(t)), 0);
    expect(out.metrics["loss:sum"]).toBeCloseTo(expected, 5);
    const poll = mock.server.requestsTo("POST /api/v1/retrieve_future").at(-1)!;
    expect(poll.headers.accept).toBe("application/x-protobuf");
    expect(poll.headers["x-tinker-request-type"]).toBe("ForwardBackward");
  });

  it("pipelines: optim_step is POSTed before the forward_backward result is delivered", async () => {
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    let optimPostedBeforeResult = false;
    mock.resultGate = async (_id, result) => {
      if (result.kind !== "fwd") return;
      for (
        let i = 0;
        i < 200 && mock.server.requestsTo("POST /api/v1/optim_step").length === 0;
        i++
      ) {
        await new Promise((r) => setTimeout(r, 5));
      }
      optimPostedBeforeResult = mock.server.requestsTo("POST /api/v1/optim_step").length > 0;
    };
    const fb = tc.forwardBackward([datum([1, 2, 3])], "cross_entropy");
    const step = tc.optimStep({ learningRate: 1e-3 });
    const [out, stepOut] = await Promise.all([fb, step]);
    expect(optimPostedBeforeResult).toBe(true);
    expect(out.metrics["loss:sum"]).toBeGreaterThan(0);
    expect(stepOut.metrics).toEqual({ "grad_norm:mean": 0.5 });
    expect(mock.training.map((e) => [e.endpoint, e.seqId])).toEqual([
      ["POST /api/v1/forward_backward", 1],
      ["POST /api/v1/optim_step", 2],
    ]);
    const optim = bodyJson(mock.server.requestsTo("POST /api/v1/optim_step")[0]!);
    expect(optim).toEqual({
      adam_params: {
        learning_rate: 1e-3,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-12,
        weight_decay: 0,
        grad_clip_norm: 0,
      },
      model_id: "sess-1:train:0",
      seq_id: 2,
      type: "optim_step",
    });
  });

  it("a request is POSTed only after the previous one was acknowledged", async () => {
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    mock.server.script("POST /api/v1/forward_backward", { status: 503 }, { status: 503 });
    const fb = tc.forwardBackward([datum([1, 2, 3])], "cross_entropy");
    const step = tc.optimStep();
    const save = tc.saveState("ckpt");
    await Promise.all([fb, step, save]);
    const posts = mock.server.requests.filter((r) =>
      /forward_backward|optim_step|save_weights/.test(r.path),
    );
    expect(posts.map((r) => r.path)).toEqual([
      "/api/v1/forward_backward",
      "/api/v1/forward_backward",
      "/api/v1/forward_backward",
      "/api/v1/optim_step",
      "/api/v1/save_weights",
    ]);
    // The retried chunk kept its seq_id.
    expect(
      posts.slice(0, 3).map((r) => decodeForwardBackwardRequest(new Uint8Array(r.body)).seqId),
    ).toEqual([1, 1, 1]);
    expect(mock.training.map((e) => e.seqId)).toEqual([1, 2, 3]);
  });

  it("chunks large batches by the server's limits: one seq_id per chunk, first chunk last, merged in order", async () => {
    mock.flags = { fwdbwd_max_chunk_len: 2 };
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    const data = [
      datum([1, 2, 3]),
      datum([4, 5]),
      datum([6, 7, 8]),
      datum([9, 10]),
      datum([11, 12, 13]),
    ];
    const fb = tc.forwardBackward(data, "cross_entropy");
    const step = tc.optimStep();
    const [out] = await Promise.all([fb, step]);
    const chunks = mock.training.filter((e) => e.endpoint.endsWith("forward_backward"));
    expect(chunks.map((c) => c.seqId).sort()).toEqual([1, 2, 3]);
    expect(chunks.at(-1)!.seqId).toBe(1); // first chunk sent last
    expect(mock.training.at(-1)).toMatchObject({ endpoint: "POST /api/v1/optim_step", seqId: 4 });
    expect(out.lossFnOutputs).toHaveLength(5);
    expect(Array.from(out.lossFnOutputs[4]!.logprobs!.data)).toEqual(
      [12, 13].map((t) => Math.fround(tokenLogprob(t))),
    );
    const expected = [2, 3, 5, 7, 8, 10, 12, 13].reduce(
      (a, t) => a - Math.fround(tokenLogprob(t)),
      0,
    );
    expect(out.metrics["loss:sum"]).toBeCloseTo(expected, 5);
    expect(out.metrics["n:mean"]).toBeCloseTo((2 * 2 + 2 * 2 + 1 * 1) / 5, 6);
  });

  it("zstd-compresses protobuf bodies when the server sets proto_compress_fwdbwd", async () => {
    mock.flags = { proto_compress_fwdbwd: true };
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    const big = datum(Array.from({ length: 600 }, (_, i) => i % 50));
    const out = await tc.forwardBackward([big], "cross_entropy");
    const req = mock.server.requestsTo("POST /api/v1/forward_backward")[0]!;
    expect(req.headers["content-encoding"]).toBe("zstd");
    expect(req.headers["content-type"]).toBe("application/x-protobuf");
    expect(out.lossFnOutputs[0]!.logprobs!.data.length).toBe(599);
  });

  it("sends chunks sequentially when parallel_fwdbwd_chunks is off", async () => {
    mock.flags = { fwdbwd_max_chunk_len: 1, parallel_fwdbwd_chunks: false };
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    await tc.forward([datum([1, 2]), datum([3, 4]), datum([5, 6])], "cross_entropy");
    expect(mock.training.map((e) => e.seqId)).toEqual([1, 2, 3]);
    const req = decodeForwardBackwardRequest(
      new Uint8Array(mock.server.requestsTo("POST /api/v1/forward_backward")[0]!.body),
    );
    expect(req.forwardOnly).toBe(true);
  });

  it("speaks the JSON wire format to older servers", async () => {
    await service.close();
    service = open({ wireFormat: "json" });
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    const out = await tc.forwardBackward([datum([1, 2, 3])], "cross_entropy", { beta: 0.5 });
    await tc.forward([datum([1, 2, 3])], "cross_entropy");
    const fb = bodyJson(mock.server.requestsTo("POST /api/v1/forward_backward")[0]!);
    expect(fb).toEqual({
      forward_backward_input: {
        data: [
          {
            loss_fn_inputs: {
              target_tokens: { data: [2, 3], dtype: "int64", shape: [2] },
              weights: { data: [1, 1], dtype: "float32", shape: [2] },
            },
            model_input: { chunks: [{ tokens: [1, 2], type: "encoded_text" }] },
          },
        ],
        loss_fn: "cross_entropy",
        loss_fn_config: { beta: 0.5 },
      },
      model_id: "sess-1:train:0",
      seq_id: 1,
    });
    expect(mock.server.requestsTo("POST /api/v1/forward")).toHaveLength(1);
    expect(out.lossFnOutputs[0]!.logprobs!.data[0]).toBeCloseTo(tokenLogprob(2), 6);
    const poll = mock.server.requestsTo("POST /api/v1/retrieve_future").at(-1)!;
    expect(poll.headers.accept).toBe("application/json");
  });

  it("'auto' wire format follows the pre-0.25 proto_write_fwdbwd flag", async () => {
    await service.close();
    mock.flags = { proto_write_fwdbwd: false };
    service = open({ wireFormat: "auto" });
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    await tc.forwardBackward([datum([1, 2, 3])], "cross_entropy");
    expect(
      mock.server.requestsTo("POST /api/v1/forward_backward")[0]!.headers["content-type"],
    ).toBe("application/json");
  });

  it("a failed future surfaces as RequestFailedError and later requests still go out", async () => {
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    mock.server.script("POST /api/v1/retrieve_future", {
      json: { error: "bad tokens", category: "user" },
    });
    const fb = tc.forwardBackward([datum([1, 2, 3])], "cross_entropy");
    await expect(fb).rejects.toBeInstanceOf(RequestFailedError);
    await expect(tc.optimStep()).resolves.toBeDefined();
  });

  it("save, load and sampler checkpoints carry the reference bodies", async () => {
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    const saved = await tc.saveState("s1", { ttlSeconds: 60 });
    expect(saved.path).toBe("tinker://sess-1:train:0/weights/s1");
    const loaded = await tc.loadStateWithOptimizer(saved.path);
    expect(loaded.path).toBe(saved.path);
    const sampler = await tc.saveWeightsForSampler("step-1");
    expect(sampler.path).toBe("tinker://sess-1:train:0/sampler_weights/step-1");
    const bodies = mock.server.requests
      .filter((r) => /save_weights|load_weights/.test(r.path))
      .map((r) => bodyJson(r));
    expect(bodies).toEqual([
      {
        model_id: "sess-1:train:0",
        path: "s1",
        seq_id: 1,
        ttl_seconds: 60,
        overwrite: false,
        type: "save_weights",
      },
      {
        model_id: "sess-1:train:0",
        seq_id: 2,
        path: saved.path,
        optimizer: true,
        type: "load_weights",
      },
      { model_id: "sess-1:train:0", path: "step-1", seq_id: 3, type: "save_weights_for_sampler" },
    ]);
    const saveReq = mock.server.requestsTo("POST /api/v1/save_weights")[0]!;
    expect(saveReq.headers["x-stainless-retry-count"]).toBe("0");
  });

  it("saveWeightsAndGetSamplingClient uses the ephemeral form and samples on the returned session", async () => {
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    const sc = await tc.saveWeightsAndGetSamplingClient();
    expect(await sc.samplingSessionId()).toBe("sess-1:sample:0");
    const body = bodyJson(mock.server.requestsTo("POST /api/v1/save_weights_for_sampler")[0]!);
    expect(body).toEqual({
      model_id: "sess-1:train:0",
      seq_id: 1,
      sampling_session_seq_id: 0,
      type: "save_weights_for_sampler",
    });
    const res = await sc.sample([1, 2, 3], 1, { maxTokens: 2 });
    expect(res.sequences[0]!.tokens).toEqual([4, 5]);
    expect(mock.server.requestsTo("POST /api/v1/create_sampling_session")).toHaveLength(0);
  });

  it("saveWeightsAndGetSamplingClient reports its request id; cancel() stops the wait", async () => {
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    mock.pendingPolls = 1_000_000;
    const f = tc.saveWeightsAndGetSamplingClient();
    const id = await f.submitted;
    expect(id).toMatch(/./);
    expect(f.requestId).toBe(id);
    f.cancel();
    const err = await f.result({ timeout: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIUserAbortError);
  });

  it("createTrainingClientFromState: weights_info -> create_model -> load_weights when the flag is off", async () => {
    const path = "tinker://run-a:train:0/weights/s1";
    const tc = await service.createTrainingClientFromState(path);
    const create = bodyJson(mock.server.requestsTo("POST /api/v1/create_model")[0]!);
    expect(create.lora_config).toEqual({
      rank: 16,
      train_unembed: false,
      train_mlp: true,
      train_attn: true,
    });
    expect(bodyJson(mock.server.requestsTo("POST /api/v1/weights_info")[0]!)).toEqual({
      tinker_path: path,
    });
    const load = bodyJson(mock.server.requestsTo("POST /api/v1/load_weights")[0]!);
    expect(load).toMatchObject({ model_id: tc.modelId, seq_id: 1, path, optimizer: false });
    await tc.optimStep();
    expect(mock.training.at(-1)!.seqId).toBe(2);
  });

  it("createTrainingClientFromStateWithOptimizer: one create-via-load request when the flag is on", async () => {
    mock.flags = { create_model_via_load_weights: true };
    const path = "tinker://run-a:train:0/weights/s1";
    const tc = await service.createTrainingClientFromStateWithOptimizer(path, {
      baseModel: "Qwen/Qwen3-8B",
    });
    expect(tc.modelId).toBe("sess-1:train:0");
    expect(mock.server.requestsTo("POST /api/v1/create_model")).toHaveLength(0);
    expect(bodyJson(mock.server.requestsTo("POST /api/v1/load_weights")[0]!)).toEqual({
      session_id: "sess-1",
      model_seq_id: 0,
      base_model: "Qwen/Qwen3-8B",
      path,
      optimizer: true,
      type: "load_weights",
    });
    await tc.optimStep();
    expect(mock.training.at(-1)).toMatchObject({ endpoint: "POST /api/v1/optim_step", seqId: 1 });
    await expect(
      service.createTrainingClientFromState("tinker://r/sampler_weights/x"),
    ).rejects.toThrow(/sampler checkpoint/);
    await expect(service.createTrainingClientFromState("s3://x")).rejects.toThrow(/tinker:\/\//);
  });

  it("getInfo and getTokenizer resolve the tokenizer id through the loader", async () => {
    await service.close();
    const asked: string[] = [];
    service = open({
      tokenizerLoader: async (id) => {
        asked.push(id);
        return { encode: () => [1], decode: () => "x" };
      },
    });
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    const info = await tc.getInfo();
    expect(info.modelData.tokenizerId).toBe("Qwen/Qwen3-8B");
    expect(info.loraRank).toBe(32);
    const tok = await tc.getTokenizer();
    await tc.getTokenizer();
    expect(tok.decode([1])).toBe("x");
    expect(asked).toEqual(["Qwen/Qwen3-8B"]);
  });

  it("getTokenizer without a loader uses the tokenizers module (offline: says what to do)", async () => {
    const tc: TrainingClient = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    const saved = { offline: process.env.HF_HUB_OFFLINE, home: process.env.HF_HOME };
    process.env.HF_HUB_OFFLINE = "1";
    process.env.HF_HOME = "/nonexistent/tinker-ts-test-hf-home";
    try {
      await expect(tc.getTokenizer()).rejects.toThrow(/"Qwen\/Qwen3-8B".*offline mode is on/);
    } finally {
      if (saved.offline === undefined) delete process.env.HF_HUB_OFFLINE;
      else process.env.HF_HUB_OFFLINE = saved.offline;
      if (saved.home === undefined) delete process.env.HF_HOME;
      else process.env.HF_HOME = saved.home;
    }
  });

  it("getServerCapabilities needs no session", async () => {
    const caps = await service.getServerCapabilities();
    expect(caps.supportedModels).toEqual([{ modelName: "Qwen/Qwen3-8B", maxContextLength: 32768 }]);
    expect(mock.server.requestsTo("POST /api/v1/create_session")).toHaveLength(0);
  });

  it("timeout bounds a training call; an abort before submission takes no seq_id", async () => {
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    const ac = new AbortController();
    ac.abort();
    await expect(tc.optimStep({}, { signal: ac.signal })).rejects.toThrow(/aborted/);
    mock.pendingPolls = 1_000_000;
    const err = await tc.optimStep({}, { timeout: 100 }).catch((e) => e);
    expect(err).toBeInstanceOf(APITimeoutError);
    expect((err as Error).message).toMatch(/OptimStep timed out after 0.1 s/);
    mock.pendingPolls = 0;
    await tc.optimStep();
    expect(mock.training.map((e) => e.seqId)).toEqual([1, 2]);
  });

  it("an AbortSignal cancels a training call while it waits", async () => {
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    mock.pendingPolls = 1_000_000;
    const ac = new AbortController();
    const f = tc.optimStep({}, { signal: ac.signal });
    await f.submitted;
    ac.abort();
    await expect(f).rejects.toThrow(/aborted/);
  });
});

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { APIUserAbortError, TinkerValidationError } from "../../src/client/errors.js";
import { ServiceClient } from "../../src/client/service-client.js";
import { makeDatum } from "../../src/client/types/datum.js";
import { decodeForwardBackwardRequest } from "../../src/client/wire/proto.js";
import { bodyJson } from "./helpers/fault-server.js";
import { clientFor, FAST_TIMINGS, MockTinker, tokenLogprob } from "./helpers/mock-tinker.js";

const FAST = { ...FAST_TIMINGS, archiveRetryMs: 20 };

/** A smooth non-linear loss with an analytic gradient: L = sum(lp^2) / 2 + sum(exp(lp)). */
function loss(lps: Float32Array[]): number {
  let l = 0;
  for (const lp of lps) for (const v of lp) l += (v * v) / 2 + Math.exp(v);
  return l;
}

describe("forwardBackwardCustom", () => {
  let mock: MockTinker;
  let service: ServiceClient;
  beforeEach(async () => {
    mock = await MockTinker.start();
    service = clientFor(mock, { timings: FAST });
  });
  afterEach(async () => {
    await service.close();
    await mock.close();
  });

  it("applies the user's gradient as weights = -dL/dlogprobs (checked by finite differences)", async () => {
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    const data = [
      makeDatum([1, 2, 3], { target_tokens: [2, 3, 4] }),
      makeDatum([7, 8], { target_tokens: [8, 12] }),
    ];
    const out = await tc.forwardBackwardCustom(data, (_d, lps) => ({
      loss: loss(lps),
      metrics: { "my_metric:mean": 3 },
      grads: lps.map((lp) => lp.map((v) => v + Math.exp(v))),
    }));
    const step = await tc.optimStep();
    expect(step).toBeDefined();
    // Two training requests, adjacent, then the optim_step.
    expect(mock.training.map((e) => e.seqId)).toEqual([1, 2, 3]);
    const posts = mock.server
      .requestsTo("POST /api/v1/forward_backward")
      .map((r) => decodeForwardBackwardRequest(new Uint8Array(r.body)));
    expect(posts[0]!.forwardOnly).toBe(true);
    expect(Array.from(posts[0]!.data[0]!.lossFnInputs.weights!.data)).toEqual([0, 0, 0]);
    expect(posts[1]!.forwardOnly).toBe(false);
    const lps = [2, 3, 4, 8, 12].map((t) => Math.fround(tokenLogprob(t)));
    const sentWeights = [
      ...posts[1]!.data[0]!.lossFnInputs.weights!.data,
      ...posts[1]!.data[1]!.lossFnInputs.weights!.data,
    ];
    // Central finite differences of the user's loss w.r.t. each logprob equal -weight.
    const eps = 1e-3;
    const flat = Float32Array.from(lps);
    for (let j = 0; j < flat.length; j++) {
      const up = Float64Array.from(flat);
      const dn = Float64Array.from(flat);
      up[j]! += eps;
      dn[j]! -= eps;
      const fd = (loss([Float32Array.from(up)]) - loss([Float32Array.from(dn)])) / (2 * eps);
      expect(-sentWeights[j]!).toBeCloseTo(fd, 2);
    }
    expect(out.metrics["my_metric:mean"]).toBe(3);
    expect(out.metrics["custom_loss:sum"]).toBeCloseTo(loss([Float32Array.from(lps)]), 4);
    // Surrogate CE value: sum(-lp * w) = sum(lp * g).
    const surrogate = lps.reduce((a, v, j) => a - v * sentWeights[j]!, 0);
    expect(out.metrics["loss:sum"]).toBeCloseTo(surrogate, 4);
  });

  it("an optimStep issued right after cannot slip between the two requests", async () => {
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    const data = [makeDatum([1, 2], { target_tokens: [2, 3] })];
    const custom = tc.forwardBackwardCustom(data, async (_d, lps) => {
      await new Promise((r) => setTimeout(r, 50));
      return { loss: 0, grads: lps.map((lp) => lp.map(() => 1)) };
    });
    const step = tc.optimStep();
    await Promise.all([custom, step]);
    expect(mock.training.map((e) => [e.endpoint.split("/").pop(), e.seqId])).toEqual([
      ["forward_backward", 1],
      ["forward_backward", 2],
      ["optim_step", 3],
    ]);
  });

  it("cancel() of the returned future stops the call (here: before the backward request)", async () => {
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    const data = [makeDatum([1, 2], { target_tokens: [2, 3] })];
    let lossCalled!: () => void;
    const inLoss = new Promise<void>((r) => {
      lossCalled = r;
    });
    const custom = tc.forwardBackwardCustom(data, async (_d, lps) => {
      lossCalled();
      await new Promise((r) => setTimeout(r, 50));
      return { loss: 0, grads: lps.map((lp) => lp.map(() => 1)) };
    });
    await inLoss;
    custom.cancel();
    const err = await custom.result({ timeout: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIUserAbortError);
    await tc.optimStep();
    expect(mock.training.map((e) => [e.endpoint.split("/").pop(), e.seqId])).toEqual([
      ["forward_backward", 1],
      ["optim_step", 2],
    ]);
  });

  it("rejects unsupported inputs and bad gradients", async () => {
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    expect(() =>
      tc.forwardBackwardCustom([makeDatum([1], { target_tokens: [2], advantages: [1] })], () => ({
        loss: 0,
        grads: [],
      })),
    ).toThrow(/accepts only target_tokens and weights/);
    await expect(
      tc.forwardBackwardCustom([makeDatum([1, 2], { target_tokens: [2, 3] })], () => ({
        loss: 0,
        grads: [new Float32Array(5)],
      })),
    ).rejects.toThrow(TinkerValidationError);
    // The client still works after a failed custom call.
    await expect(tc.optimStep()).resolves.toBeDefined();
  });
});

describe("RestClient", () => {
  let mock: MockTinker;
  let service: ServiceClient;
  beforeEach(async () => {
    mock = await MockTinker.start();
    service = clientFor(mock, { timings: FAST });
  });
  afterEach(async () => {
    await service.close();
    await mock.close();
  });

  const ckpt = {
    checkpoint_id: "weights/0001",
    checkpoint_type: "training",
    time: "2026-01-01T00:00:00Z",
    tinker_path: "tinker://run-1:train:0/weights/0001",
    size_bytes: 10,
    public: false,
  };

  it("lists checkpoints and runs with camelCase results and raw path ids; never creates a session", async () => {
    mock.server.on("GET /api/v1/training_runs/run-1:train:0/checkpoints", () => ({
      json: { checkpoints: [ckpt] },
    }));
    mock.server.on("GET /api/v1/training_runs", () => ({
      json: {
        training_runs: [
          {
            training_run_id: "run-1:train:0",
            base_model: "Qwen/Qwen3-8B",
            model_owner: "me",
            is_lora: true,
            corrupted: false,
            last_request_time: "2026-01-01T00:00:00Z",
            user_metadata: { my_key: "v" },
          },
        ],
        cursor: { offset: 0, limit: 20, total_count: 1 },
      },
    }));
    const rest = service.createRestClient();
    const list = await rest.listCheckpoints("run-1:train:0");
    expect(list.checkpoints[0]).toEqual({
      checkpointId: "weights/0001",
      checkpointType: "training",
      time: "2026-01-01T00:00:00Z",
      tinkerPath: "tinker://run-1:train:0/weights/0001",
      sizeBytes: 10,
      public: false,
    });
    const runs = await rest.listTrainingRuns({ limit: 5, accessScope: "accessible" });
    expect(runs.trainingRuns[0]!.userMetadata).toEqual({ my_key: "v" });
    expect(runs.cursor.totalCount).toBe(1);
    const q = mock.server.requestsTo("GET /api/v1/training_runs")[0]!.query;
    expect([q.get("limit"), q.get("offset"), q.get("access_scope")]).toEqual([
      "5",
      "0",
      "accessible",
    ]);
    expect(mock.server.requestsTo("POST /api/v1/create_session")).toHaveLength(0);
  });

  it("deletes, publishes, unpublishes and sets TTL with the checkpoint id unescaped", async () => {
    for (const r of [
      "DELETE /api/v1/training_runs/run-1:train:0/checkpoints/weights/0001",
      "POST /api/v1/training_runs/run-1:train:0/checkpoints/weights/0001/publish",
      "DELETE /api/v1/training_runs/run-1:train:0/checkpoints/weights/0001/publish",
      "PUT /api/v1/training_runs/run-1:train:0/checkpoints/weights/0001/ttl",
    ]) {
      mock.server.on(r, () => ({ status: 200, body: "" }));
    }
    const rest = service.createRestClient();
    const path = "tinker://run-1:train:0/weights/0001";
    await rest.deleteCheckpointFromTinkerPath(path);
    await rest.publishCheckpointFromTinkerPath(path);
    await rest.unpublishCheckpointFromTinkerPath(path);
    await rest.setCheckpointTtlFromTinkerPath(path, 3600);
    await rest.setCheckpointTtlFromTinkerPath(path, null);
    const ttl = mock.server.requestsTo(
      "PUT /api/v1/training_runs/run-1:train:0/checkpoints/weights/0001/ttl",
    );
    expect(ttl.map((r) => bodyJson(r))).toEqual([{ ttl_seconds: 3600 }, { ttl_seconds: null }]);
    await expect(rest.setCheckpointTtlFromTinkerPath(path, 0)).rejects.toThrow(/positive integer/);
    await expect(rest.deleteCheckpointFromTinkerPath("tinker://run/other/x")).rejects.toThrow(
      /weights/,
    );
  });

  it("archive URL: 302 + Location, 200 JSON, and 503 while the archive is built", async () => {
    const route = "GET /api/v1/training_runs/run-1:train:0/checkpoints/weights/0001/archive";
    mock.server.script(route, {
      status: 302,
      headers: { location: "https://signed/1", expires: "Thu, 01 Jan 2026 00:15:00 GMT" },
    });
    mock.server.script(route, { status: 503, json: {} }, { status: 503, json: {} });
    mock.server.on(route, () => ({
      json: { url: "https://signed/2", expires: "2026-01-01T01:00:00Z" },
    }));
    const rest = service.createRestClient();
    const a = await rest.getCheckpointArchiveUrlFromTinkerPath(
      "tinker://run-1:train:0/weights/0001",
    );
    expect(a.url).toBe("https://signed/1");
    expect(a.expires.toISOString()).toBe("2026-01-01T00:15:00.000Z");
    expect(mock.server.requestsTo(route)[0]!.headers.accept).toBe("application/json");
    const b = await rest.getCheckpointArchiveUrl("run-1:train:0", "weights/0001");
    expect(b.url).toBe("https://signed/2");
    expect(mock.server.requestsTo(route)).toHaveLength(4);
  });

  it("sessions, samplers, weights info, trace export and missing fields", async () => {
    mock.server.on("GET /api/v1/sessions", () => ({ json: { sessions: ["a", "b"] } }));
    mock.server.on("GET /api/v1/sessions/a", () => ({
      json: { training_run_ids: ["r"], sampler_ids: [] },
    }));
    mock.server.on("PUT /api/v1/sessions/a/project", () => ({ body: "" }));
    mock.server.script("GET /api/v1/sessions/a/trace_export", { json: { status: "pending" } });
    mock.server.on("GET /api/v1/sessions/a/trace_export", () => ({
      json: { status: "ready", url: "https://t" },
    }));
    mock.server.on("GET /api/v1/checkpoints", () => ({ json: { nope: 1 } }));
    const rest = service.createRestClient();
    expect((await rest.listSessions()).sessions).toEqual(["a", "b"]);
    expect(await rest.getSession("a")).toEqual({ trainingRunIds: ["r"], samplerIds: [] });
    await rest.assignSessionProject("a", "p");
    expect(bodyJson(mock.server.requestsTo("PUT /api/v1/sessions/a/project")[0]!)).toEqual({
      project_id: "p",
    });
    const traced = clientFor(mock, { timings: { ...FAST, tracePollMs: 10 } });
    expect(await traced.createRestClient().exportSessionTrace("a")).toBe("https://t");
    await traced.close();
    expect((await rest.getSampler("s:sample:0")).baseModel).toBe("Qwen/Qwen3-8B");
    const wi = await rest.getWeightsInfoByTinkerPath("tinker://r/weights/x");
    expect(wi).toMatchObject({ baseModel: "Qwen/Qwen3-8B", isLora: true, loraRank: 16 });
    await expect(rest.listUserCheckpoints()).rejects.toThrow(
      /GET \/api\/v1\/checkpoints: response field "checkpoints" is missing/,
    );
  });

  it("whoami decodes the JWT without a request", async () => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const jwt = `${enc({ alg: "none" })}.${enc({ sub: "user:42", email: "x@y.z", exp: Date.now() / 1000 + 3600 })}.sig`;
    const s = new ServiceClient({ apiKey: jwt, baseUrl: mock.url, logLevel: "off" });
    expect(await s.createRestClient().whoami()).toEqual({ userUrn: "user:42", email: "x@y.z" });
    await s.close();
    await expect(service.createRestClient().whoami()).rejects.toThrow(/needs a JWT/);
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  APITimeoutError,
  APIUserAbortError,
  BadRequestError,
  TinkerValidationError,
} from "../../src/client/errors.js";
import type { ServiceClient, ServiceClientOptions } from "../../src/client/service-client.js";
import { bodyJson } from "./helpers/fault-server.js";
import { clientFor, FAST_TIMINGS, MockTinker, tokenLogprob } from "./helpers/mock-tinker.js";

const FAST = {
  ...FAST_TIMINGS,
  sampleBackoffSmallMs: 150,
  sampleBackoffLargeMs: 400,
  sampleRetryBaseMs: 5,
  sampleRetryCapMs: 20,
};

describe("SamplingClient", () => {
  let mock: MockTinker;
  let service: ServiceClient;
  const open = (extra: ServiceClientOptions = {}) => clientFor(mock, { timings: FAST, ...extra });

  beforeEach(async () => {
    mock = await MockTinker.start();
    service = open();
  });
  afterEach(async () => {
    await service.close();
    await mock.close();
  });

  const asamples = () => mock.server.requestsTo("POST /api/v1/asample").map((r) => bodyJson(r));

  it("creates a sampling session and sends the reference asample body", async () => {
    const sc = await service.createSamplingClient({
      modelPath: "tinker://sess-1:train:0/sampler_weights/step-1",
    });
    expect(bodyJson(mock.server.requestsTo("POST /api/v1/create_sampling_session")[0]!)).toEqual({
      session_id: "sess-1",
      sampling_session_seq_id: 0,
      model_path: "tinker://sess-1:train:0/sampler_weights/step-1",
      type: "create_sampling_session",
    });
    const res = await sc.sample([1, 2, 3], 2, { maxTokens: 4, temperature: 0.7 });
    expect(res.sequences.map((s) => s.tokens)).toEqual([
      [4, 5, 6, 7],
      [5, 6, 7, 8],
    ]);
    expect(res.sequences[0]!.logprobs![0]).toBeCloseTo(tokenLogprob(4), 6);
    expect(res.sequences[0]!.stopReason).toBe("length");
    expect(asamples()[0]).toEqual({
      num_samples: 2,
      prompt: { chunks: [{ tokens: [1, 2, 3], type: "encoded_text" }] },
      sampling_params: { max_tokens: 4, temperature: 0.7, top_k: -1, top_p: 1 },
      sampling_session_id: "sess-1:sample:0",
      seq_id: 0,
      prompt_logprobs: false,
      topk_prompt_logprobs: 0,
      type: "sample",
    });
    const post = mock.server.requestsTo("POST /api/v1/asample")[0]!;
    expect(post.headers["x-tinker-sampling-backpressure"]).toBe("1");
    const poll = mock.server.requestsTo("POST /api/v1/retrieve_future").at(-1)!;
    expect(poll.headers.accept).toBe("application/x-protobuf");
    expect(poll.headers["x-tinker-request-type"]).toBe("Sample");
  });

  it("numbers sample calls per client from 0", async () => {
    const a = await service.createSamplingClient({ baseModel: "Qwen/Qwen3-8B" });
    const b = await service.createSamplingClient({ baseModel: "Qwen/Qwen3-8B" });
    await Promise.all([a.sample([1], 1), a.sample([2], 1), b.sample([3], 1)]);
    const ids = asamples().map((x) => [x.sampling_session_id, x.seq_id]);
    expect(ids).toContainEqual(["sess-1:sample:0", 0]);
    expect(ids).toContainEqual(["sess-1:sample:0", 1]);
    expect(ids).toContainEqual(["sess-1:sample:1", 0]);
  });

  it("computeLogprobs asks for prompt logprobs with max_tokens 1", async () => {
    const sc = await service.createSamplingClient({ baseModel: "Qwen/Qwen3-8B" });
    const lps = await sc.computeLogprobs([5, 6, 7]);
    expect(lps[0]).toBeNull();
    expect(lps[1]).toBeCloseTo(tokenLogprob(6), 6);
    expect(lps[2]).toBeCloseTo(tokenLogprob(7), 6);
    const b = asamples()[0]!;
    expect(b.prompt_logprobs).toBe(true);
    expect(b.num_samples).toBe(1);
    expect((b.sampling_params as { max_tokens: number }).max_tokens).toBe(1);
  });

  it("computeLogprobs reports the sample's request id and queue states; cancel() stops it", async () => {
    const sc = await service.createSamplingClient({ baseModel: "Qwen/Qwen3-8B" });
    mock.pendingPolls = 1_000_000;
    const f = sc.computeLogprobs([5, 6, 7]);
    const states: string[] = [];
    f.on("queueState", (e) => states.push(e.queueState));
    const id = await f.submitted;
    expect(f.requestId).toBe(id);
    await vi.waitFor(() => expect(states).toContain("active"));
    f.cancel();
    const err = await f.result({ timeout: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIUserAbortError);
  });

  it("a 429 on submission backs everyone off and resends with the same seq_id", async () => {
    const sc = await service.createSamplingClient({ baseModel: "Qwen/Qwen3-8B" });
    mock.server.script("POST /api/v1/asample", { status: 429, json: { detail: "slow down" } });
    const t0 = Date.now();
    const res = await sc.sample([1, 2], 1, { maxTokens: 1 });
    expect(res.sequences).toHaveLength(1);
    const posts = mock.server.requestsTo("POST /api/v1/asample");
    expect(posts).toHaveLength(2);
    expect(posts.map((p) => bodyJson(p).seq_id)).toEqual([0, 0]);
    expect(posts[1]!.at - posts[0]!.at).toBeGreaterThanOrEqual(140);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it("an expired promise (410) resubmits the whole sample under a new seq_id", async () => {
    const sc = await service.createSamplingClient({ baseModel: "Qwen/Qwen3-8B" });
    let first = true;
    mock.resultGate = async () => {
      if (first) {
        first = false;
        throw new Error("expire");
      }
    };
    mock.server.script("POST /api/v1/retrieve_future", {
      status: 410,
      json: { detail: "promise expired" },
    });
    const res = await sc.sample([1, 2], 1, { maxTokens: 2 });
    expect(res.sequences[0]!.tokens).toEqual([3, 4]);
    expect(asamples().map((b) => b.seq_id)).toEqual([0, 1]);
  });

  it("retries 5xx submissions and polls; user errors are not retried", async () => {
    const sc = await service.createSamplingClient({ baseModel: "Qwen/Qwen3-8B" });
    mock.server.script("POST /api/v1/asample", { status: 503 }, { drop: true });
    mock.server.script("POST /api/v1/retrieve_future", { status: 502 });
    await sc.sample([1], 1);
    mock.server.script("POST /api/v1/asample", {
      status: 400,
      json: { detail: "prompt too long" },
    });
    const err = await sc.sample([1], 1).catch((e) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as Error).message).toContain("prompt too long");
  });

  it("bounds in-flight samples by sample_max_concurrent_requests", async () => {
    mock.flags = { sample_max_concurrent_requests: 3 };
    const sc = await service.createSamplingClient({ baseModel: "Qwen/Qwen3-8B" });
    let active = 0;
    let peak = 0;
    mock.resultGate = async () => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 20));
      active--;
    };
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => sc.sample([i + 1], 1, { maxTokens: 1 })),
    );
    expect(results).toHaveLength(12);
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThanOrEqual(2);
  });

  it("sample_no_retries turns the retry handler off", async () => {
    mock.flags = { sample_no_retries: true };
    await service.close();
    service = open({ maxRetries: 0, timings: { ...FAST, retryBudgetMs: 0 } });
    const sc = await service.createSamplingClient({ baseModel: "Qwen/Qwen3-8B" });
    mock.server.script("POST /api/v1/retrieve_future", { status: 410, json: {} });
    await expect(sc.sample([1], 1)).rejects.toThrow(/expired/);
    expect(asamples()).toHaveLength(1);
  });

  it("timeout bounds the whole sample including retries", async () => {
    const sc = await service.createSamplingClient({ baseModel: "Qwen/Qwen3-8B" });
    mock.pendingPolls = 1_000_000;
    const err = await sc.sample([1], 1, {}, { timeout: 150 }).catch((e) => e);
    expect(err).toBeInstanceOf(APITimeoutError);
  });

  it("timeout bounds createSamplingClient (ServiceClient and TrainingClient)", async () => {
    await service.sessionId();
    mock.server.script("POST /api/v1/create_sampling_session", { hang: true }, { hang: true });
    const err = await service
      .createSamplingClient({ baseModel: "Qwen/Qwen3-8B" }, { timeout: 100 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APITimeoutError);
    expect((err as Error).message).toMatch(/create_sampling_session timed out after 0.1 s/);
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B");
    const err2 = await tc
      .createSamplingClient("tinker://run/sampler_weights/x", { timeout: 100 })
      .catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(APITimeoutError);
  });

  it("validates parameters before sending", async () => {
    const sc = await service.createSamplingClient({ baseModel: "Qwen/Qwen3-8B" });
    expect(() => sc.sample([1], 0)).toThrow(/numSamples/);
    expect(() => sc.sample([], 1)).toThrow(/prompt is empty/);
    expect(() => sc.sample([1], 1, { maxTokens: 0 })).toThrow(TinkerValidationError);
    expect(() => sc.sample([1], 1, { topP: 2 })).toThrow(/topP/);
    await expect(service.createSamplingClient({})).rejects.toThrow(/modelPath/);
    await expect(service.createSamplingClient({ modelPath: "s3://x" })).rejects.toThrow(
      /tinker:\/\//,
    );
  });

  it("getBaseModel asks the server for a checkpoint sampler", async () => {
    const sc = await service.createSamplingClient({ modelPath: "tinker://r/sampler_weights/s" });
    expect(await sc.getBaseModel()).toBe("Qwen/Qwen3-8B");
    expect(mock.server.requestsTo("GET /api/v1/samplers/sess-1:sample:0")).toHaveLength(1);
  });
});

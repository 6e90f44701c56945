/**
 * The server's own machinery (routing, sessions, ordering, futures, durable state, REST, security)
 * over real HTTP, with a deterministic engine double so the assertions can be exact.
 * The same paths run against the real engine in `server-engine.test.ts`.
 */
import { readdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { idToDirName } from "../../src/local/server/names.js";
import type { LocalServer } from "../../src/local/server/server.js";
import { startLocalServer } from "../../src/local/server/server.js";
import { EngineDouble } from "./engine-double.js";
import { Raw, startTestServer, tempDir, untar } from "./helpers.js";

const MODEL = "double-model";
const datum = (tokens: number[]) => ({
  model_input: { chunks: [{ tokens, type: "encoded_text" }] },
  loss_fn_inputs: {
    target_tokens: { data: tokens.map((t) => t + 1), dtype: "int64", shape: [tokens.length] },
    weights: { data: tokens.map(() => 1), dtype: "float32", shape: [tokens.length] },
  },
});
const fb = (modelId: string, seqId: number) => ({
  forward_backward_input: { data: [datum([1, 2, 3])], loss_fn: "cross_entropy" },
  model_id: modelId,
  seq_id: seqId,
});
const optim = (modelId: string, seqId: number, lr = 0.5) => ({
  adam_params: { learning_rate: lr },
  model_id: modelId,
  seq_id: seqId,
  type: "optim_step",
});

async function newSession(api: Raw): Promise<string> {
  const r = await api.post("/api/v1/create_session", {
    tags: ["t"],
    user_metadata: {},
    sdk_version: "0.25.0",
    type: "create_session",
  });
  expect(r.status).toBe(200);
  return String(r.json.session_id);
}

async function newModel(api: Raw, sessionId: string, seq = 0, seed = 3): Promise<string> {
  const r = await api.run("/api/v1/create_model", {
    session_id: sessionId,
    model_seq_id: seq,
    base_model: MODEL,
    lora_config: { rank: 4, seed },
    type: "create_model",
  });
  expect(r.json).toEqual({ model_id: `${sessionId}:train:${seq}`, type: "create_model" });
  return String(r.json.model_id);
}

describe("local server machinery (engine double)", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let engine: EngineDouble;
  let server: LocalServer;
  let api: Raw;

  beforeAll(async () => {
    tmp = await tempDir("server-mech");
    engine = new EngineDouble();
    server = await startTestServer(tmp.dir, engine);
    api = new Raw(server.url);
  });
  afterAll(async () => {
    await server.close();
    await tmp.cleanup();
  });
  afterEach(async () => {
    engine.delayMs = 0;
    expect(await api.healthy()).toBe(true);
  });

  it("bootstraps like the reference: config flags, dynamic config, session, heartbeat", async () => {
    const cfg = await api.post("/api/v1/client/config", { sdk_version: "0.25.0" });
    expect(cfg.json).toMatchObject({ pjwt_auth_enabled: false, use_pyqwest_transport: false });
    const dyn = await api.post("/api/v1/client/dynamic_config", { sdk_version: "0.25.0" });
    expect(dyn.json).toEqual({ refresh_interval_sec: 300 });
    const sid = await newSession(api);
    const hb = await api.post("/api/v1/session_heartbeat", {
      session_id: sid,
      type: "session_heartbeat",
    });
    expect(hb.json).toEqual({ type: "session_heartbeat" });
    const caps = await api.get("/api/v1/get_server_capabilities");
    expect(caps.json).toEqual({
      supported_models: [{ model_name: MODEL, max_context_length: 512 }],
    });
    const tel = await api.post("/api/v1/telemetry", { events: [], session_id: sid });
    expect(tel.json).toEqual({ status: "accepted" });
  });

  it("creates a model with the reference id and answers get_info", async () => {
    const sid = await newSession(api);
    const modelId = await newModel(api, sid, 0);
    const info = await api.post("/api/v1/get_info", { model_id: modelId, type: "get_info" });
    expect(info.json).toMatchObject({
      model_id: modelId,
      is_lora: true,
      lora_rank: 4,
      model_name: MODEL,
      model_data: { arch: "qwen3", model_name: MODEL },
    });
    // A retried create_model (same session and model_seq_id) returns the same future.
    const body = {
      session_id: sid,
      model_seq_id: 0,
      base_model: MODEL,
      lora_config: { rank: 4 },
      type: "create_model",
    };
    const again = await api.post("/api/v1/create_model", body);
    expect(again.status).toBe(200);
  });

  it("executes pipelined requests in seq_id order even when they arrive reversed", async () => {
    const sid = await newSession(api);
    const modelId = await newModel(api, sid, 0, 5); // w starts at 5
    engine.log.length = 0;
    engine.delayMs = 20;
    const o = await api.post("/api/v1/optim_step", optim(modelId, 2));
    const f = await api.post("/api/v1/forward_backward", fb(modelId, 1));
    const f2 = await api.post("/api/v1/forward", {
      forward_input: { data: [datum([4, 5])], loss_fn: "cross_entropy" },
      model_id: modelId,
      seq_id: 3,
    });
    const rf = await api.result(String(f.json.request_id));
    const ro = await api.result(String(o.json.request_id));
    const rf2 = await api.result(String(f2.json.request_id));
    expect(engine.log).toEqual([
      `forward_backward ${modelId} w=5`,
      `optim_step ${modelId}`,
      `forward ${modelId} w=4.5`,
    ]);
    expect(rf.json.metrics).toMatchObject({ "loss:sum": 18 });
    expect(ro.json).toEqual({ metrics: { "step:max": 1 } });
    expect((rf2.json.loss_fn_outputs as unknown[]).length).toBe(1);
  });

  it("returns the original future for a duplicate seq_id and runs it once", async () => {
    const sid = await newSession(api);
    const modelId = await newModel(api, sid);
    engine.log.length = 0;
    const a = await api.post("/api/v1/forward_backward", fb(modelId, 1));
    const b = await api.post("/api/v1/forward_backward", fb(modelId, 1));
    expect(b.json.request_id).toBe(a.json.request_id);
    await api.result(String(a.json.request_id));
    const c = await api.post("/api/v1/forward_backward", fb(modelId, 1));
    expect(c.json.request_id).toBe(a.json.request_id);
    expect(engine.log.filter((l) => l.startsWith("forward_backward"))).toHaveLength(1);
  });

  it("answers try_again while a result is not ready, then the result", async () => {
    const sid = await newSession(api);
    const modelId = await newModel(api, sid);
    engine.delayMs = 500; // longer than the 200 ms poll hold
    const sub = await api.post("/api/v1/forward_backward", fb(modelId, 1));
    const first = await api.post("/api/v1/retrieve_future", {
      request_id: sub.json.request_id,
      allow_metadata_only: true,
    });
    expect(first.json).toEqual({
      type: "try_again",
      request_id: sub.json.request_id,
      queue_state: "active",
    });
    const done = await api.result(String(sub.json.request_id));
    expect(done.json.loss_fn_output_type).toBe("ArrayRecord");
  });

  it("rejects out-of-order seq_ids with 400 and a message naming the next seq_id", async () => {
    const sid = await newSession(api);
    const modelId = await newModel(api, sid);
    await api.run("/api/v1/forward_backward", fb(modelId, 1));
    await api.run("/api/v1/optim_step", optim(modelId, 2));
    const behind = await api.post("/api/v1/forward_backward", fb(modelId, 1 - 1));
    expect(behind.status).toBe(400);
    expect(String(behind.json.detail)).toMatch(/seq_id 0 .*next expected seq_id is 3/);
    const reused = await api.post("/api/v1/optim_step", optim(modelId, 1));
    expect(reused.status).toBe(400);
    expect(String(reused.json.detail)).toMatch(/already used by a forward_backward/);
    // the model still works
    const ok = await api.run("/api/v1/forward_backward", fb(modelId, 3));
    expect(ok.json.metrics).toBeDefined();
  });

  it("fails requests behind a seq_id gap after the timeout with a clear error", async () => {
    const t = await tempDir("server-gap");
    const e2 = new EngineDouble();
    const s2 = await startTestServer(t.dir, e2, { limits: { seqGapTimeoutMs: 150 } });
    try {
      const a2 = new Raw(s2.url);
      const modelId = await newModel(a2, await newSession(a2));
      const later = await a2.post("/api/v1/forward_backward", fb(modelId, 2));
      const r = await a2.result(String(later.json.request_id));
      expect(r.json.category).toBe("user");
      expect(String(r.json.error)).toMatch(/seq_id 1 .*never arrived/);
      expect(await a2.healthy()).toBe(true);
    } finally {
      await s2.close();
      await t.cleanup();
    }
  });

  it("rejects malformed and invalid requests with 4xx JSON details and stays healthy", async () => {
    const sid = await newSession(api);
    const modelId = await newModel(api, sid);
    const cases: Array<
      [string, Promise<{ status: number; json: Record<string, unknown> }>, number, RegExp]
    > = [
      ["bad JSON", api.post("/api/v1/create_session", "{not json"), 400, /not valid JSON/],
      [
        "missing field",
        api.post("/api/v1/create_model", { session_id: sid }),
        400,
        /model_seq_id|base_model|lora/,
      ],
      [
        "unknown model",
        api.post("/api/v1/forward_backward", fb("nope:train:0", 1)),
        404,
        /unknown model_id/,
      ],
      [
        "unknown session",
        api.post("/api/v1/create_model", {
          session_id: "nope",
          model_seq_id: 0,
          base_model: MODEL,
          lora_config: { rank: 2 },
        }),
        404,
        /create_session/,
      ],
      [
        "unknown base model",
        api.post("/api/v1/create_model", {
          session_id: sid,
          model_seq_id: 9,
          base_model: "Qwen/Nope",
          lora_config: { rank: 2 },
        }),
        400,
        /unknown base_model.*double-model/,
      ],
      [
        "bad loss",
        api.post("/api/v1/forward_backward", {
          ...fb(modelId, 1),
          forward_backward_input: { data: [datum([1])], loss_fn: "mse" },
        }),
        400,
        /unknown loss_fn.*cross_entropy/,
      ],
      [
        "bad protobuf",
        api.post("/api/v1/forward_backward", new Uint8Array([0xff, 0xff, 0xff]), {
          "content-type": "application/x-protobuf",
        }),
        400,
        /./,
      ],
      [
        "bad checkpoint name",
        api.post("/api/v1/save_weights", {
          model_id: modelId,
          path: "../../etc",
          seq_id: 1,
          type: "save_weights",
        }),
        400,
        /invalid checkpoint name/,
      ],
      [
        "unknown future",
        api.post("/api/v1/retrieve_future", { request_id: "req-x" }),
        404,
        /unknown request_id/,
      ],
      ["unknown path", api.post("/api/v1/nope", {}), 404, /no endpoint/],
      ["wrong method", api.get("/api/v1/create_session"), 405, /use POST/],
      ["unknown run", api.get("/api/v1/training_runs/nope:train:0"), 404, /unknown training run/],
    ];
    for (const [what, pending, status, detail] of cases) {
      const r = await pending;
      expect(r.status, what).toBe(status);
      expect(String(r.json.detail), what).toMatch(detail);
      expect(await api.healthy(), what).toBe(true);
    }
  });

  it("rejects oversized bodies with 413 and keeps serving", async () => {
    const t = await tempDir("server-413");
    const s2 = await startTestServer(t.dir, new EngineDouble(), {
      limits: { maxBodyBytes: 64 * 1024 },
    });
    try {
      const a2 = new Raw(s2.url);
      const big = { events: [{ blob: "x".repeat(200 * 1024) }] };
      const r = await a2.post("/api/v1/telemetry", big);
      expect(r.status).toBe(413);
      expect(String(r.json.detail)).toMatch(/exceeds the server limit of 65536 bytes/);
      expect(await a2.healthy()).toBe(true);
      expect((await a2.post("/api/v1/telemetry", { events: [] })).status).toBe(200);
    } finally {
      await s2.close();
      await t.cleanup();
    }
  });

  it("saves, lists, publishes, expires, archives and deletes checkpoints", async () => {
    const sid = await newSession(api);
    const modelId = await newModel(api, sid);
    const save = await api.run("/api/v1/save_weights", {
      model_id: modelId,
      path: "step-1",
      seq_id: 1,
      overwrite: false,
      type: "save_weights",
    });
    expect(save.json).toEqual({ path: `tinker://${modelId}/weights/step-1`, type: "save_weights" });
    const dup = await api.run("/api/v1/save_weights", {
      model_id: modelId,
      path: "step-1",
      seq_id: 2,
      type: "save_weights",
    });
    expect(dup.json.category).toBe("user");
    expect(String(dup.json.error)).toMatch(/already exists.*overwrite/);
    const samp = await api.run("/api/v1/save_weights_for_sampler", {
      model_id: modelId,
      path: "s1",
      seq_id: 3,
      ttl_seconds: 3600,
      type: "save_weights_for_sampler",
    });
    expect(samp.json.path).toBe(`tinker://${modelId}/sampler_weights/s1`);

    const list = await api.get(`/api/v1/training_runs/${modelId}/checkpoints`);
    const cps = list.json.checkpoints as Array<Record<string, unknown>>;
    expect(cps.map((c) => c.checkpoint_id).sort()).toEqual([
      "sampler_weights/s1",
      "weights/step-1",
    ]);
    const w = cps.find((c) => c.checkpoint_id === "weights/step-1")!;
    expect(w).toMatchObject({
      checkpoint_type: "training",
      public: false,
      tinker_path: `tinker://${modelId}/weights/step-1`,
    });
    expect(w.size_bytes).toBeGreaterThan(0);
    expect(cps.find((c) => c.checkpoint_id === "sampler_weights/s1")!.expires_at).toBeDefined();

    const cpUrl = `/api/v1/training_runs/${modelId}/checkpoints/weights/step-1`;
    expect((await api.post(`${cpUrl}/publish`)).status).toBe(204);
    expect((await api.post(`${cpUrl}/publish`)).status).toBe(409);
    expect((await api.get(cpUrl)).json.public).toBe(true);
    expect((await api.call("DELETE", `${cpUrl}/publish`)).status).toBe(204);
    expect((await api.call("PUT", `${cpUrl}/ttl`, { ttl_seconds: 0 })).status).toBe(400);
    expect((await api.call("PUT", `${cpUrl}/ttl`, { ttl_seconds: 100 })).status).toBe(204);
    expect((await api.get(cpUrl)).json.expires_at).toBeDefined();
    expect((await api.call("PUT", `${cpUrl}/ttl`, { ttl_seconds: null })).status).toBe(204);
    expect((await api.get(cpUrl)).json.expires_at).toBeUndefined();
    // an escaped checkpoint id reaches the same checkpoint
    expect(
      (await api.get(`/api/v1/training_runs/${modelId}/checkpoints/weights%2Fstep-1`)).status,
    ).toBe(200);

    const arch = await api.get(`${cpUrl}/archive`);
    expect(arch.status).toBe(200);
    expect(String(arch.json.url)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/v1\/archives\//);
    expect(Date.parse(String(arch.json.expires))).toBeGreaterThan(Date.now());
    const tarRes = await fetch(String(arch.json.url));
    expect(tarRes.headers.get("content-type")).toBe("application/x-tar");
    const files = untar(new Uint8Array(await tarRes.arrayBuffer()));
    expect([...files.keys()].sort()).toEqual(["adapter.json", "optimizer.json"]);
    expect(JSON.parse(Buffer.from(files.get("adapter.json")!).toString())).toMatchObject({
      baseModel: MODEL,
    });

    const runs = await api.get("/api/v1/training_runs?limit=100");
    const run = (runs.json.training_runs as Array<Record<string, unknown>>).find(
      (r) => r.training_run_id === modelId,
    )!;
    expect(run).toMatchObject({ base_model: MODEL, is_lora: true, lora_rank: 4, corrupted: false });
    expect((run.last_checkpoint as Record<string, unknown>).checkpoint_id).toBe("weights/step-1");
    expect(runs.json.cursor).toMatchObject({ offset: 0, limit: 100 });
    const all = await api.get("/api/v1/checkpoints?limit=1");
    expect((all.json.checkpoints as unknown[]).length).toBe(1);
    expect((all.json.cursor as Record<string, number>).total_count).toBeGreaterThanOrEqual(2);

    expect((await api.call("DELETE", cpUrl)).status).toBe(204);
    expect((await api.get(cpUrl)).status).toBe(404);
    const sess = await api.get(`/api/v1/sessions/${sid}`);
    expect(sess.json.training_run_ids).toEqual([modelId]);
    expect(
      ((await api.get("/api/v1/sessions?limit=1000")).json.sessions as string[]).includes(sid),
    ).toBe(true);
  });

  it("samples from base models, sampler checkpoints and ephemeral weights", async () => {
    const sid = await newSession(api);
    const modelId = await newModel(api, sid, 0, 2);
    const base = await api.post("/api/v1/create_sampling_session", {
      session_id: sid,
      sampling_session_seq_id: 0,
      base_model: MODEL,
      type: "create_sampling_session",
    });
    expect(base.json).toEqual({
      sampling_session_id: `${sid}:sample:0`,
      type: "create_sampling_session",
    });
    const sampleBody = (samplerId: string, seqId: number) => ({
      num_samples: 2,
      prompt: { chunks: [{ tokens: [1, 2, 3], type: "encoded_text" }] },
      sampling_params: { max_tokens: 3, seed: 1, temperature: 1, top_k: -1, top_p: 1 },
      sampling_session_id: samplerId,
      seq_id: seqId,
      prompt_logprobs: false,
      topk_prompt_logprobs: 0,
      type: "sample",
    });
    const r = await api.run("/api/v1/asample", sampleBody(`${sid}:sample:0`, 0));
    expect(r.json.sequences).toEqual([
      { stop_reason: "length", tokens: [1, 2, 3], logprobs: [-0.5, -0.5, -0.5] },
      { stop_reason: "length", tokens: [2, 3, 4], logprobs: [-0.5, -0.5, -0.5] },
    ]);
    // same sampler + seq_id = same future
    const d1 = await api.post("/api/v1/asample", sampleBody(`${sid}:sample:0`, 7));
    const d2 = await api.post("/api/v1/asample", sampleBody(`${sid}:sample:0`, 7));
    expect(d2.json.request_id).toBe(d1.json.request_id);

    /** Saves sampler weights `name` at seq_id `seq`, then opens a sampling session on them. */
    const samplerOnCheckpoint = async (name: string, seq: number) => {
      const saved = await api.run("/api/v1/save_weights_for_sampler", {
        model_id: modelId,
        path: name,
        seq_id: seq,
        type: "save_weights_for_sampler",
      });
      const session = await api.post("/api/v1/create_sampling_session", {
        session_id: sid,
        sampling_session_seq_id: seq,
        model_path: saved.json.path,
        type: "create_sampling_session",
      });
      return { path: saved.json.path, samplerId: String(session.json.sampling_session_id) };
    };
    const fromCkpt = await samplerOnCheckpoint("sw", 1);
    const r2 = await api.run("/api/v1/asample", sampleBody(fromCkpt.samplerId, 0));
    expect((r2.json.sequences as Array<{ tokens: number[] }>)[0]!.tokens).toEqual(
      [1 + (2000 % 256), 2 + (2000 % 256), 3 + (2000 % 256)].map((x) => x % 256),
    );
    const info = await api.get(`/api/v1/samplers/${fromCkpt.samplerId}`);
    expect(info.json).toEqual({
      sampler_id: fromCkpt.samplerId,
      base_model: MODEL,
      model_path: fromCkpt.path,
    });

    const eph = await api.run("/api/v1/save_weights_for_sampler", {
      model_id: modelId,
      seq_id: 2,
      sampling_session_seq_id: 2,
      type: "save_weights_for_sampler",
    });
    expect(eph.json.sampling_session_id).toBe(`${sid}:sample:2`);
    const r3 = await api.run("/api/v1/asample", sampleBody(`${sid}:sample:2`, 0));
    expect(r3.json.sequences).toEqual(r2.json.sequences);
    const none = await api.post("/api/v1/asample", sampleBody(`${sid}:sample:99`, 0));
    expect(none.status).toBe(404);

    // A sampler whose checkpoint was deleted before its weights were loaded: a user error.
    const orphan = await samplerOnCheckpoint("doomed", 3);
    const del = await api.call(
      "DELETE",
      `/api/v1/training_runs/${modelId}/checkpoints/sampler_weights/doomed`,
    );
    expect(del.status).toBe(204);
    const gone = await api.run("/api/v1/asample", sampleBody(orphan.samplerId, 0));
    expect(gone.json.category).toBe("user");
    expect(String(gone.json.error)).toMatch(/sampler_weights\/doomed were deleted/);
  });

  it("announces large results with complete_metadata when the client allows it", async () => {
    const t = await tempDir("server-meta");
    const s2 = await startTestServer(t.dir, new EngineDouble(), {
      limits: { inlineResultBytes: 10 },
    });
    try {
      const a2 = new Raw(s2.url);
      const modelId = await newModel(a2, await newSession(a2));
      const sub = await a2.post("/api/v1/forward_backward", fb(modelId, 1));
      const meta = await a2.result(String(sub.json.request_id), "application/json", true);
      expect(meta.json.status).toBe("complete_metadata");
      const full = await a2.result(String(sub.json.request_id), "application/json", false);
      expect(Number(meta.json.response_payload_size)).toBe(full.bytes.length);
      expect(full.json.loss_fn_output_type).toBe("ArrayRecord");
    } finally {
      await s2.close();
      await t.cleanup();
    }
  });

  it("unloads a model: later requests get 404 with a hint", async () => {
    const sid = await newSession(api);
    const modelId = await newModel(api, sid);
    await api.run("/api/v1/save_weights", { model_id: modelId, path: "keep", seq_id: 1 });
    const un = await api.run("/api/v1/unload_model", { model_id: modelId, type: "unload_model" });
    expect(un.json).toEqual({ model_id: modelId, type: "unload_model" });
    expect(engine.adapters.has(modelId)).toBe(false);
    const after = await api.post("/api/v1/forward_backward", fb(modelId, 2));
    expect(after.status).toBe(404);
    expect(String(after.json.detail)).toContain(`tinker://${modelId}/weights/keep`);
  });

  it("deletes checkpoints whose TTL passed", async () => {
    const sid = await newSession(api);
    const modelId = await newModel(api, sid);
    await api.run("/api/v1/save_weights", {
      model_id: modelId,
      path: "short",
      seq_id: 1,
      ttl_seconds: 1,
    });
    await api.run("/api/v1/save_weights", { model_id: modelId, path: "long", seq_id: 2 });
    const list = async () =>
      (
        (await api.get(`/api/v1/training_runs/${modelId}/checkpoints`)).json.checkpoints as Array<{
          checkpoint_id: string;
        }>
      ).map((c) => c.checkpoint_id);
    expect((await list()).sort()).toEqual(["weights/long", "weights/short"]);
    await new Promise((r) => setTimeout(r, 1100));
    expect(await list()).toEqual(["weights/long"]);
    const gone = await api.post("/api/v1/weights_info", {
      tinker_path: `tinker://${modelId}/weights/short`,
    });
    expect(gone.status).toBe(404);
  });

  it("computes samples concurrently, at most samplingConcurrency at a time", async () => {
    const t = await tempDir("server-sampling");
    const e2 = new EngineDouble();
    const s2 = await startTestServer(t.dir, e2, { limits: { samplingConcurrency: 3 } });
    try {
      const a2 = new Raw(s2.url);
      const sid = await newSession(a2);
      const ss = await a2.post("/api/v1/create_sampling_session", {
        session_id: sid,
        sampling_session_seq_id: 0,
        base_model: MODEL,
      });
      let active = 0;
      let peak = 0;
      let open!: () => void;
      const gate = new Promise<void>((r) => {
        open = r;
      });
      const inner = e2.sample.bind(e2);
      e2.sample = async (req) => {
        active++;
        peak = Math.max(peak, active);
        await gate; // hold every sample until the test has seen the limit reached
        try {
          return await inner(req);
        } finally {
          active--;
        }
      };
      const body = (seq: number) => ({
        num_samples: 1,
        prompt: { chunks: [{ tokens: [1], type: "encoded_text" }] },
        sampling_params: { max_tokens: 2 },
        sampling_session_id: ss.json.sampling_session_id,
        seq_id: seq,
      });
      const pending = Promise.all(
        Array.from({ length: 12 }, (_, i) => a2.run("/api/v1/asample", body(i))),
      );
      for (let i = 0; i < 200 && active < 3; i++) await new Promise((r) => setTimeout(r, 25));
      await new Promise((r) => setTimeout(r, 100)); // would a 4th start if it could?
      expect(active).toBe(3);
      open();
      const results = await pending;
      expect(results.every((r) => Array.isArray(r.json.sequences))).toBe(true);
      expect(peak).toBe(3);
    } finally {
      await s2.close();
      await t.cleanup();
    }
  });

  it("lets two servers share a data dir: each sees checkpoints the other saved", async () => {
    const t = await tempDir("server-shared");
    const e1 = new EngineDouble();
    const e2 = new EngineDouble();
    const s1 = await startTestServer(t.dir, e1);
    const s2 = await startTestServer(t.dir, e2);
    try {
      const a1 = new Raw(s1.url);
      const a2 = new Raw(s2.url);
      const modelId = await newModel(a1, await newSession(a1), 0, 4);
      const saved = await a1.run("/api/v1/save_weights", {
        model_id: modelId,
        path: "shared",
        seq_id: 1,
      });
      const runs = await a2.get("/api/v1/training_runs");
      expect(
        (runs.json.training_runs as Array<{ training_run_id: string }>).map(
          (r) => r.training_run_id,
        ),
      ).toContain(modelId);
      expect((await a2.post("/api/v1/weights_info", { tinker_path: saved.json.path })).status).toBe(
        200,
      );
      const sid2 = await newSession(a2);
      const loaded = await a2.run("/api/v1/load_weights", {
        session_id: sid2,
        model_seq_id: 0,
        path: saved.json.path,
        optimizer: true,
      });
      expect(loaded.json.model_id).toBe(`${sid2}:train:0`);
      expect(e2.weightOf(`${sid2}:train:0`)).toBe(4);
    } finally {
      await s2.close();
      await s1.close();
      await t.cleanup();
    }
  });

  it("keeps checkpoints and run metadata across a restart, and training continues from them", async () => {
    const t = await tempDir("server-restart");
    try {
      const e1 = new EngineDouble();
      const s1 = await startTestServer(t.dir, e1);
      const a1 = new Raw(s1.url);
      const sid = await newSession(a1);
      const modelId = await newModel(a1, sid, 0, 6);
      await a1.run("/api/v1/forward_backward", fb(modelId, 1));
      await a1.run("/api/v1/optim_step", optim(modelId, 2, 1));
      const saved = await a1.run("/api/v1/save_weights", {
        model_id: modelId,
        path: "ckpt",
        seq_id: 3,
        type: "save_weights",
      });
      await a1.run("/api/v1/forward_backward", fb(modelId, 4)); // in flight at "crash" time: lost
      await s1.close();

      const e2 = new EngineDouble();
      const s2 = await startTestServer(t.dir, e2);
      const a2 = new Raw(s2.url);
      const runs = await a2.get("/api/v1/training_runs");
      expect(
        (runs.json.training_runs as Array<{ training_run_id: string }>).map(
          (r) => r.training_run_id,
        ),
      ).toContain(modelId);
      const stale = await a2.post("/api/v1/forward_backward", fb(modelId, 5));
      expect(stale.status).toBe(404);
      expect(String(stale.json.detail)).toContain(String(saved.json.path));
      const info = await a2.post("/api/v1/weights_info", { tinker_path: saved.json.path });
      expect(info.json).toMatchObject({ base_model: MODEL, is_lora: true, lora_rank: 4 });

      // create-via-load (what create_training_client_from_state sends when the flag is on)
      const sid2 = await newSession(a2);
      const loaded = await a2.run("/api/v1/load_weights", {
        session_id: sid2,
        model_seq_id: 0,
        path: saved.json.path,
        optimizer: true,
        type: "load_weights",
      });
      const newId = `${sid2}:train:0`;
      expect(loaded.json).toMatchObject({ model_id: newId, type: "load_weights" });
      expect(e2.weightOf(newId)).toBe(5); // 6 - lr 1 * grad 1
      await a2.run("/api/v1/forward_backward", fb(newId, 1));
      const step = await a2.run("/api/v1/optim_step", optim(newId, 2, 1));
      expect(step.json).toEqual({ metrics: { "step:max": 2 } }); // optimizer state came back too
      expect(e2.weightOf(newId)).toBe(4);
      await s2.close();
    } finally {
      await t.cleanup();
    }
  });
});

describe("local server crash recovery", () => {
  it("restores a checkpoint a crash left only as the hidden backup of an atomic replace", async () => {
    const t = await tempDir("server-crash-replace");
    try {
      const s1 = await startTestServer(t.dir, new EngineDouble());
      const a1 = new Raw(s1.url);
      const modelId = await newModel(a1, await newSession(a1), 0, 6);
      const saved = await a1.run("/api/v1/save_weights", {
        model_id: modelId,
        path: "ckpt",
        seq_id: 1,
        type: "save_weights",
      });
      await s1.close();
      // The state between the two renames of replaceDirAtomic: only the backup remains.
      const kindDir = join(t.dir, "runs", idToDirName(modelId), "weights");
      await rename(join(kindDir, "ckpt"), join(kindDir, ".ckpt.replaced-4242-0123456789ab"));

      const s2 = await startTestServer(t.dir, new EngineDouble());
      const a2 = new Raw(s2.url);
      const info = await a2.post("/api/v1/weights_info", { tinker_path: saved.json.path });
      expect(info.status).toBe(200);
      expect(info.json).toMatchObject({ base_model: MODEL, lora_rank: 4 });
      await s2.close();
    } finally {
      await t.cleanup();
    }
  });
});

describe("local server security", () => {
  it("refuses to bind beyond loopback without an API key", async () => {
    await expect(startLocalServer({ host: "0.0.0.0", engine: new EngineDouble() })).rejects.toThrow(
      /apiKey/,
    );
  });

  it("offers only the presets it was asked for", async () => {
    const t = await tempDir("server-presets");
    const s = await startLocalServer({ dataDir: t.dir, presets: ["tiny-bytes"] });
    try {
      const api = new Raw(s.url);
      const caps = await api.get("/api/v1/get_server_capabilities");
      const names = (caps.json.supported_models as Array<{ model_name: string }>).map(
        (m) => m.model_name,
      );
      expect(names).toEqual(["tiny-bytes"]);
      const session = String((await api.post("/api/v1/create_session", {})).json.session_id);
      const r = await api.post("/api/v1/create_model", {
        session_id: session,
        model_seq_id: 0,
        base_model: "tiny-qwen3",
        lora_config: { rank: 4 },
      });
      expect(r.status).toBe(400);
      expect(String(r.json.detail)).toMatch(/unknown base_model "tiny-qwen3".*serves: tiny-bytes/);
    } finally {
      await s.close();
      await t.cleanup();
    }
  });

  it("fails a busy port with a hint and leaves no scratch dir behind", async () => {
    const t = await tempDir("server-busy-port");
    const s = await startTestServer(t.dir, new EngineDouble());
    try {
      await expect(
        startLocalServer({ dataDir: t.dir, port: s.port, engine: new EngineDouble() }),
      ).rejects.toThrow(/already in use.*port 0 picks a free one/);
      // Only the running server's scratch dir remains.
      expect(await readdir(join(t.dir, "tmp"))).toHaveLength(1);
    } finally {
      await s.close();
      await t.cleanup();
    }
  });

  it("requires the API key when one is configured, except for healthz", async () => {
    const t = await tempDir("server-key");
    const s = await startTestServer(t.dir, new EngineDouble(), { apiKey: "tml-secret" });
    try {
      const anon = new Raw(s.url);
      const r = await anon.post("/api/v1/create_session", {});
      expect(r.status).toBe(401);
      expect(String(r.json.detail)).toMatch(/X-API-Key/);
      expect(
        (await anon.post("/api/v1/create_session", {}, { "x-api-key": "tml-wrong" })).status,
      ).toBe(401);
      expect(await anon.healthy()).toBe(true);
      const authed = new Raw(s.url, { "x-api-key": "tml-secret" });
      expect((await authed.post("/api/v1/create_session", {})).status).toBe(200);
    } finally {
      await s.close();
      await t.cleanup();
    }
  });

  it("refuses browser requests (Origin) and foreign Host headers on an open loopback server", async () => {
    const t = await tempDir("server-origin");
    const s = await startTestServer(t.dir, new EngineDouble());
    try {
      const r = await new Raw(s.url).post(
        "/api/v1/create_session",
        {},
        { origin: "https://evil.example" },
      );
      expect(r.status).toBe(403);
    } finally {
      await s.close();
      await t.cleanup();
    }
  });
});

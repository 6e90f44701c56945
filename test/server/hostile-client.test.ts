/**
 * The local server against a hostile (or just careless) client on loopback, on the real engine
 * (tiny-bytes): requests refused when sent must not stall the model's seq_id stream, DNS-rebound
 * Host headers, failed writes that must leave no ghost state, unbounded metadata, zstd bombs,
 * optimizer values float32 cannot take, requests larger than the engine's memory, names the file
 * system cannot hold, bad start-up folders, crash leftovers and file permissions.
 */
import { spawnSync } from "node:child_process";
import { mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalEngine } from "../../src/local/engine/api.js";
import { modelMemory } from "../../src/local/engine/core/memory.js";
import { getPreset } from "../../src/local/engine/io/presets.js";
import { adapterBytes } from "../../src/local/server/admission.js";
import { idToDirName, MAX_CHECKPOINT_NAME } from "../../src/local/server/names.js";
import { isLoopback, type LocalServer, startLocalServer } from "../../src/local/server/server.js";
import { Raw, startTestServer, tempDir } from "./helpers.js";
import { realEngine } from "./real-engine.js";

const MODEL = "tiny-bytes";

const jsonDatum = (tokens: number[]) => ({
  model_input: { chunks: [{ tokens, type: "encoded_text" }] },
  loss_fn_inputs: {
    target_tokens: { data: tokens.map((t) => t + 1), dtype: "int64", shape: [tokens.length] },
    weights: { data: tokens.map(() => 1), dtype: "float32", shape: [tokens.length] },
  },
});
const fb = (modelId: string, seqId: number, tokens = [1, 2, 3, 4]) => ({
  forward_backward_input: { data: [jsonDatum(tokens)], loss_fn: "cross_entropy" },
  model_id: modelId,
  seq_id: seqId,
});
const fwd = (modelId: string, seqId: number) => ({
  forward_input: { data: [jsonDatum([5, 6, 7, 8])], loss_fn: "cross_entropy" },
  model_id: modelId,
  seq_id: seqId,
});
const optim = (modelId: string, seqId: number, adam: Record<string, unknown>) => ({
  adam_params: adam,
  model_id: modelId,
  seq_id: seqId,
  type: "optim_step",
});

async function newSession(api: Raw, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await api.post("/api/v1/create_session", {
    tags: [],
    user_metadata: {},
    sdk_version: "0.25.0",
    type: "create_session",
    ...extra,
  });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return String(r.json.session_id);
}

/** A request with a Host header fetch() would not let us set. */
function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/api/v1/get_server_capabilities`, { headers: { host } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

/** A zstd frame (no declared content size, 128 KiB window) made of raw and RLE blocks. */
function zstdFrame(blocks: Array<{ raw: Uint8Array } | { rle: number; size: number }>): Uint8Array {
  const parts: number[] = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3];
  blocks.forEach((b, i) => {
    const last = i === blocks.length - 1 ? 1 : 0;
    const [type, size, body] = "raw" in b ? [0, b.raw.length, [...b.raw]] : [1, b.size, [b.rle]];
    const h = last | (type << 1) | (size << 3);
    parts.push(h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff, ...body);
  });
  return new Uint8Array(parts);
}

/** ~7 500 RLE blocks of 128 KiB: a 30 KB body that unpacks to ~1 GB. */
const bombBlocks = (n = 7500) =>
  Array.from({ length: n }, () => ({ rle: 0, size: 128 * 1024 }) as const);

function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", ""]);
  return r.pid ?? 999_999;
}

describe("local server against a hostile client (real engine)", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let engine: LocalEngine;
  let closeEngine: () => Promise<void>;
  let server: LocalServer;
  let api: Raw;
  let sid: string;
  let modelSeq = 0;
  const newModel = async (rank = 4): Promise<string> =>
    api.createModel(sid, modelSeq++, MODEL, { rank, seed: 1 });

  beforeAll(async () => {
    tmp = await tempDir("hostile");
    const e = await realEngine();
    engine = e.engine;
    closeEngine = e.close;
    server = await startTestServer(tmp.dir, engine);
    api = new Raw(server.url);
    sid = await newSession(api);
  });
  afterAll(async () => {
    await server.close();
    await closeEngine();
    await tmp.cleanup();
  });

  it("a request refused when sent uses up its seq_id: the pipelined ones behind it run at once", async () => {
    const modelId = await newModel();
    // The SDK pipelines: later requests are already queued when an earlier one is refused.
    const later = await api.post("/api/v1/forward_backward", fb(modelId, 5));
    expect(later.status).toBe(200);
    const refused: Array<[unknown, RegExp]> = [
      [
        { ...fb(modelId, 1), forward_backward_input: { data: [jsonDatum([1])], loss_fn: "mse" } },
        /unknown loss_fn/,
      ],
      [optim(modelId, 2, { learning_rate: -1 }), /adam_params\.learning_rate/],
      [optim(modelId, 3, { learning_rate: "fast" }), /learning_rate/],
      [
        { model_id: modelId, path: "../x", seq_id: 4, type: "save_weights" },
        /invalid checkpoint name/,
      ],
    ];
    const paths = ["forward_backward", "optim_step", "optim_step", "save_weights"];
    for (const [i, [body, detail]] of refused.entries()) {
      const r = await api.post(`/api/v1/${paths[i]}`, body);
      expect(r.status, JSON.stringify(r.json)).toBe(400);
      expect(String(r.json.detail)).toMatch(detail);
    }
    // No 60 s gap timeout: seq_id 5 completes (the default test timeout is 5 s).
    const done = await api.result(String(later.json.request_id));
    expect(done.status).toBe(200);
    expect(done.json.metrics).toBeDefined();
    const next = await api.run("/api/v1/optim_step", optim(modelId, 6, { learning_rate: 1e-3 }));
    expect(next.json.metrics).toBeDefined();
  });

  it("after a gap times out, a late request is told its seq_id was given up, not that it ran", async () => {
    const t = await tempDir("hostile-gap");
    const s = await startTestServer(t.dir, engine, { limits: { seqGapTimeoutMs: 100 } });
    try {
      const a = new Raw(s.url);
      const modelId = await a.createModel(await newSession(a), 0, MODEL, { rank: 2, seed: 1 });
      const ahead = await a.post("/api/v1/forward_backward", fb(modelId, 2));
      const failed = await a.result(String(ahead.json.request_id));
      expect(String(failed.json.error)).toMatch(/seq_id 1 .*never arrived/);
      const late = await a.post("/api/v1/forward_backward", fb(modelId, 1));
      expect(late.status).toBe(400);
      expect(String(late.json.detail)).toMatch(/arrived too late.*next expected seq_id is 3/);
      expect(String(late.json.detail)).not.toMatch(/executed up to/);
    } finally {
      await s.close();
      await t.cleanup();
    }
  });

  it("accepts only literal loopback Hosts, localhost or the bound address (no DNS rebinding)", async () => {
    const port = server.port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, "127.0.0.1", `[::1]:${port}`]) {
      expect(await getWithHost(server.url, host), host).toBe(200);
    }
    for (const host of [
      "127.attacker.example",
      `127.0.0.1.attacker.example:${port}`,
      "localhost.attacker.example",
      `evil.example:${port}`,
      "127.0.0.1:80:80",
    ]) {
      expect(await getWithHost(server.url, host), host).toBe(403);
    }
    expect(isLoopback("127.attacker.example")).toBe(false);
    expect(isLoopback("127.1.2.3")).toBe(true);
    expect(isLoopback("::1")).toBe(true);
    await expect(
      startLocalServer({ host: "127.attacker.example", dataDir: join(tmp.dir, "x"), engine }),
    ).rejects.toThrow(/apiKey/);
  });

  it("a failed write leaves no ghost session, run or adapter, and the same request then works", async () => {
    const t = await tempDir("hostile-ghost");
    const logged: string[] = [];
    const logger = { info() {}, warn() {}, error: (m: string) => logged.push(m) };
    const s = await startTestServer(t.dir, engine, { logger });
    try {
      const a = new Raw(s.url);
      const sessions = join(t.dir, "sessions");
      // The folder becomes a file: every write under it fails (as on a full or broken disk).
      await rename(sessions, `${sessions}.away`);
      await writeFile(sessions, "not a folder");
      const bad = await a.post("/api/v1/create_session", {
        tags: [],
        user_metadata: {},
        type: "create_session",
      });
      expect(bad.status).toBe(500);
      expect(String(bad.json.detail)).not.toContain(t.dir);
      expect(String(bad.json.detail)).not.toMatch(/ENOTDIR:|EEXIST:|open '/);
      // The details went to the server log under the reference the client was given.
      const ref = /err-[0-9a-f]{8}/.exec(String(bad.json.detail))?.[0];
      expect(logged.some((m) => ref !== undefined && m.includes(ref) && m.includes(sessions))).toBe(
        true,
      );
      expect((await a.get("/api/v1/sessions")).json.sessions).toEqual([]);
      await rm(sessions);
      await rename(`${sessions}.away`, sessions);
      const sessionId = await newSession(a);

      const runs = join(t.dir, "runs");
      await rename(runs, `${runs}.away`);
      await writeFile(runs, "not a folder");
      const create = {
        session_id: sessionId,
        model_seq_id: 0,
        base_model: MODEL,
        lora_config: { rank: 2, seed: 1 },
        type: "create_model",
      };
      const sub = await a.post("/api/v1/create_model", create);
      const res = await a.result(String(sub.json.request_id));
      expect(res.json.category).toBe("server");
      expect(String(res.json.error)).not.toContain(t.dir);
      const modelId = `${sessionId}:train:0`;
      await rm(runs);
      await rename(`${runs}.away`, runs);
      expect(await engine.hasAdapter(modelId)).toBe(false);
      expect((await a.get("/api/v1/training_runs")).json.training_runs).toEqual([]);
      expect((await a.get(`/api/v1/sessions/${sessionId}`)).json.training_run_ids).toEqual([]);
      const retry = await a.run("/api/v1/create_model", create);
      expect(retry.json.model_id).toBe(modelId);
      expect((await a.get("/api/v1/training_runs")).json.training_runs).toHaveLength(1);
      expect((await a.get(`/api/v1/sessions/${sessionId}`)).json.training_run_ids).toEqual([
        modelId,
      ]);
    } finally {
      await s.close();
      await t.cleanup();
    }
  });

  it("refuses metadata too deep or too large when it is sent; listings keep working", async () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const body = `{"tags":[],"user_metadata":{"a":${deep}},"sdk_version":"x","type":"create_session"}`;
    const r1 = await api.post("/api/v1/create_session", body);
    expect(r1.status).toBe(400);
    expect(String(r1.json.detail)).toMatch(/user_metadata nests deeper than 16 levels/);
    const big = await api.post("/api/v1/create_model", {
      session_id: sid,
      model_seq_id: 900,
      base_model: MODEL,
      lora_config: { rank: 2 },
      user_metadata: { blob: "x".repeat(1024 * 1024) },
    });
    expect(big.status).toBe(400);
    expect(String(big.json.detail)).toMatch(/user_metadata is larger than 65536 bytes/);
    const tags = await api.post("/api/v1/create_session", {
      tags: Array.from({ length: 101 }, (_, i) => `t${i}`),
      user_metadata: {},
      type: "create_session",
    });
    expect(tags.status).toBe(400);
    expect(String(tags.json.detail)).toMatch(/tags has 101 entries/);
    expect((await api.get("/api/v1/training_runs")).status).toBe(200);
    expect((await api.get("/api/v1/sessions")).status).toBe(200);
  });

  it("checks the model id before decompressing a zstd body, and caps what it decompresses", async () => {
    const headers = { "content-type": "application/x-protobuf", "content-encoding": "zstd" };
    const id = Buffer.from("nope:train:0");
    const named = zstdFrame([{ raw: new Uint8Array([0x0a, id.length, ...id]) }, ...bombBlocks()]);
    const unknown = await api.post("/api/v1/forward_backward", named, headers);
    expect(unknown.status).toBe(404);
    expect(String(unknown.json.detail)).toMatch(/unknown model_id/);

    // A bomb that names a live model and its seq_id is refused, and that seq_id is used up.
    const modelId = await newModel();
    const mid = Buffer.from(modelId);
    const head = new Uint8Array([0x0a, mid.length, ...mid, 0x10, 1]);
    const bomb = await api.post(
      "/api/v1/forward_backward",
      zstdFrame([{ raw: head }, ...bombBlocks()]),
      headers,
    );
    expect(bomb.status).toBe(413);
    expect((await api.run("/api/v1/forward_backward", fb(modelId, 2))).json.metrics).toBeDefined();

    // The decompressed cap defaults to the body cap: 2 MiB of output passes no 1 MiB server.
    const t = await tempDir("hostile-zstd");
    const s = await startTestServer(t.dir, engine, { limits: { maxBodyBytes: 1024 * 1024 } });
    try {
      const small = zstdFrame(bombBlocks(16));
      const r = await new Raw(s.url).post("/api/v1/forward_backward", small, headers);
      expect(r.status).toBe(413);
      expect(String(r.json.detail)).toMatch(/1048576-byte limit/);
    } finally {
      await s.close();
      await t.cleanup();
    }
  });

  it("keeps answering heartbeats while it refuses a zstd bomb (bounded load)", async () => {
    const headers = { "content-type": "application/x-protobuf", "content-encoding": "zstd" };
    const bomb = zstdFrame(bombBlocks());
    expect(bomb.length).toBeLessThan(32 * 1024);
    const order: string[] = [];
    const refused = api.post("/api/v1/forward_backward", bomb, headers).then((r) => {
      order.push("bomb");
      return r;
    });
    for (let i = 0; i < 10; i++) {
      const hb = await api.post("/api/v1/session_heartbeat", { session_id: sid });
      expect(hb.status).toBe(200);
      order.push("heartbeat");
    }
    const r = await refused;
    expect(r.status).toBe(413);
    // Decoding 256 MiB takes far longer than ten heartbeats on a loop that is not blocked.
    expect(order.indexOf("bomb")).toBeGreaterThan(0);
  });

  it("rejects optimizer values float32 cannot take with a 400 naming the field", async () => {
    const modelId = await newModel();
    let seq = 1;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ learning_rate: 1e39 }, "adam_params.learning_rate"],
      [{ eps: 0 }, "adam_params.eps"],
      [{ eps: -1e-8 }, "adam_params.eps"],
      [{ weight_decay: 1e40 }, "adam_params.weight_decay"],
      [{ beta1: 1 }, "adam_params.beta1"],
      [{ beta2: -0.1 }, "adam_params.beta2"],
      [{ grad_clip_norm: -1 }, "adam_params.grad_clip_norm"],
    ];
    for (const [adam, field] of cases) {
      const r = await api.post("/api/v1/optim_step", optim(modelId, seq++, adam));
      expect(r.status, field).toBe(400);
      expect(String(r.json.detail), field).toContain(field);
    }
    const ok = await api.run("/api/v1/optim_step", optim(modelId, seq, { learning_rate: 1e-3 }));
    expect(ok.json.metrics).toBeDefined();
  });

  it("refuses a step that would make the adapter non-finite and leaves the adapter unchanged", async () => {
    const modelId = await newModel();
    const logprobs = async (seqId: number) => {
      const r = await api.run("/api/v1/forward", fwd(modelId, seqId));
      const out = r.json.loss_fn_outputs as Array<{ logprobs: { data: Array<number | null> } }>;
      return out[0]!.logprobs.data;
    };
    await api.run("/api/v1/forward_backward", fb(modelId, 1));
    const before = await logprobs(2);
    // Each value is fine for float32, their product is not: the decay term overflows.
    const step = await api.run(
      "/api/v1/optim_step",
      optim(modelId, 3, { learning_rate: 1e30, weight_decay: 1e30 }),
    );
    expect(step.json.category).toBe("user");
    expect(String(step.json.error)).toMatch(/non-finite.*refused/);
    const after = await logprobs(4);
    expect(after).toEqual(before);
    expect(after.every((x) => typeof x === "number" && Number.isFinite(x))).toBe(true);
    // The gradients were kept: a sane step now applies them.
    const sane = await api.run("/api/v1/optim_step", optim(modelId, 5, { learning_rate: 1e-2 }));
    expect(sane.json.metrics).toBeDefined();
    expect(await logprobs(6)).not.toEqual(before);
  });

  it("refuses requests larger than the engine can hold when they are sent", async () => {
    const modelId = await newModel();
    // 25 x 2000 tokens: about 4.6 GB of activations on tiny-bytes, past the 4 GiB wasm heap.
    const tokens = Array.from({ length: 2000 }, (_, i) => i % 250);
    const huge = {
      forward_backward_input: {
        data: Array.from({ length: 25 }, () => jsonDatum(tokens)),
        loss_fn: "cross_entropy",
      },
      model_id: modelId,
      seq_id: 1,
    };
    const r = await api.post("/api/v1/forward_backward", huge);
    expect(r.status).toBe(400);
    expect(String(r.json.detail)).toMatch(
      /50000 tokens needs about .* MiB .*limit.*tokens fit now/,
    );
    // Its seq_id is used up: the next request runs at once.
    expect((await api.run("/api/v1/forward_backward", fb(modelId, 2))).json.metrics).toBeDefined();

    const t = await tempDir("hostile-mem");
    const s = await startTestServer(t.dir, engine, {
      limits: { engineMemoryBytes: 64 * 1024 * 1024 },
    });
    try {
      const a = new Raw(s.url);
      const sessionId = await newSession(a);
      const big = await a.post("/api/v1/create_model", {
        session_id: sessionId,
        model_seq_id: 0,
        base_model: MODEL,
        lora_config: { rank: 1024 },
      });
      expect(big.status).toBe(400);
      expect(String(big.json.detail)).toMatch(
        /rank-1024 LoRA .* MiB .*64 MiB limit.*lower lora_config\.rank/,
      );
      await a.createModel(sessionId, 1, MODEL, { rank: 4, seed: 1 });
      const sample = await a.post("/api/v1/asample", {
        base_model: MODEL,
        num_samples: 256,
        prompt: { chunks: [{ type: "encoded_text", tokens: [1, 2, 3] }] },
        sampling_params: { max_tokens: 2000 },
      });
      expect(sample.status).toBe(400);
      expect(String(sample.json.detail)).toMatch(/lower num_samples or max_tokens/);
    } finally {
      await s.close();
      await t.cleanup();
    }
  });

  it("counts the adapters samplers hold when it admits a new model", async () => {
    const mem = modelMemory(getPreset(MODEL).config);
    const lora = { rank: 8, seed: 1, trainAttn: true, trainMlp: true, trainUnembed: true };
    const one = adapterBytes(mem, lora);
    // Room for the weights and two and a half adapters.
    const t = await tempDir("hostile-samplers");
    const s = await startTestServer(t.dir, engine, {
      limits: { engineMemoryBytes: Math.floor(mem.weightBytes + 2.5 * one) },
    });
    try {
      const a = new Raw(s.url);
      const sessionId = await newSession(a);
      const modelId = await a.createModel(sessionId, 0, MODEL, { rank: 8, seed: 1 });
      const snap = await a.run("/api/v1/save_weights_for_sampler", {
        model_id: modelId,
        seq_id: 1,
        sampling_session_seq_id: 0,
        type: "save_weights_for_sampler",
      });
      const sampled = await a.run("/api/v1/asample", {
        sampling_session_id: snap.json.sampling_session_id,
        num_samples: 1,
        prompt: { chunks: [{ type: "encoded_text", tokens: [1, 2] }] },
        sampling_params: { max_tokens: 2 },
      });
      expect(sampled.json.sequences).toHaveLength(1);
      const second = await a.post("/api/v1/create_model", {
        session_id: sessionId,
        model_seq_id: 1,
        base_model: MODEL,
        lora_config: { rank: 8 },
      });
      expect(second.status).toBe(400);
      expect(String(second.json.detail)).toMatch(/1 loaded model\(s\), 1 sampler adapter\(s\)/);
    } finally {
      await s.close();
      await t.cleanup();
    }
  });

  it("limits checkpoint names to what the file system holds with temp names, and hides paths", async () => {
    const modelId = await newModel();
    const longest = "n".repeat(MAX_CHECKPOINT_NAME);
    const save = (seqId: number, path: string, overwrite = false) =>
      api.post("/api/v1/save_weights", {
        model_id: modelId,
        path,
        seq_id: seqId,
        overwrite,
        type: "save_weights",
      });
    const first = await api.result(String((await save(1, longest)).json.request_id));
    expect(first.json.path).toBe(`tinker://${modelId}/weights/${longest}`);
    // Overwriting uses the longest temp name (the moved-aside backup).
    const again = await api.result(String((await save(2, longest, true)).json.request_id));
    expect(again.json.path).toBe(`tinker://${modelId}/weights/${longest}`);
    const tooLong = await save(3, `${longest}x`);
    expect(tooLong.status).toBe(400);
    expect(String(tooLong.json.detail)).toMatch(new RegExp(`1-${MAX_CHECKPOINT_NAME} characters`));
    expect(String(tooLong.json.detail)).not.toContain(tmp.dir);
  });

  it("reports Infinity in a tensor as not finite, and every bad num_samples alike", async () => {
    const modelId = await newModel();
    const body = JSON.stringify(fb(modelId, 1)).replace('"data":[1,1,1,1]', '"data":[1,1e999,1,1]');
    const r = await api.post("/api/v1/forward_backward", body);
    expect(r.status).toBe(400);
    expect(String(r.json.detail)).toMatch(/got Infinity, which is not finite/);
    for (const n of [0, -1, 1.5, 1000, 1e9, 1e20]) {
      const s = await api.post("/api/v1/asample", {
        base_model: MODEL,
        num_samples: n,
        prompt: { chunks: [{ type: "encoded_text", tokens: [1, 2] }] },
        sampling_params: { max_tokens: 2 },
      });
      expect(s.status, String(n)).toBe(400);
      expect(String(s.json.detail), String(n)).toMatch(
        /num_samples must be an integer in \[1, 256\]/,
      );
    }
  });
});

describe("local server start-up and data dir", () => {
  it("fails at start on a missing or invalid --model-dir, with the reason", async () => {
    const t = await tempDir("hostile-modeldir");
    try {
      const opts = {
        dataDir: join(t.dir, "data"),
        presets: [],
        logger: { info() {}, warn() {}, error() {} },
      };
      await expect(
        startLocalServer({ ...opts, modelDirs: [join(t.dir, "missing")] }),
      ).rejects.toThrow(/model folder .*missing" does not exist/);
      const empty = join(t.dir, "empty");
      await mkdir(empty);
      await expect(startLocalServer({ ...opts, modelDirs: [empty] })).rejects.toThrow(
        /has no usable config\.json/,
      );
      // Nothing is left running or staged.
      expect(await readdir(join(t.dir, "data", "tmp")).catch(() => [])).toEqual([]);
    } finally {
      await t.cleanup();
    }
  });

  it("removes temp folders of dead writers at start, keeps live ones, and keeps its data private", async () => {
    const t = await tempDir("hostile-leftovers");
    try {
      const e = await realEngine();
      const runDir = join(t.dir, "runs", idToDirName("s:train:0"));
      const weights = join(runDir, "weights");
      const dead = join(weights, `.step-1.tmp-${deadPid()}-0123456789ab`);
      const live = join(weights, `.step-2.tmp-${process.pid}-0123456789ab`);
      const deadJson = join(t.dir, "sessions", `.x.json.tmp-${deadPid()}-0123456789ab`);
      for (const d of [dead, live]) {
        await mkdir(d, { recursive: true });
        await writeFile(join(d, "adapter_model.safetensors"), Buffer.alloc(1024));
      }
      await mkdir(join(t.dir, "sessions"), { recursive: true });
      await writeFile(deadJson, "{");
      await writeFile(join(runDir, "run.json"), JSON.stringify({ trainingRunId: "s:train:0" }));
      const s = await startTestServer(t.dir, e.engine);
      try {
        await expect(stat(dead)).rejects.toThrow(/ENOENT/);
        await expect(stat(deadJson)).rejects.toThrow(/ENOENT/);
        expect((await stat(live)).isDirectory()).toBe(true);
        const a = new Raw(s.url);
        const sessionId = await newSession(a);
        const modelId = await a.createModel(sessionId, 0, MODEL, { rank: 2, seed: 1 });
        const saved = await a.run("/api/v1/save_weights", {
          model_id: modelId,
          path: "ckpt",
          seq_id: 1,
          type: "save_weights",
        });
        expect(String(saved.json.path)).toMatch(/weights\/ckpt$/);
        expect((await stat(t.dir)).mode & 0o777).toBe(0o700);
        const sessionFile = join(t.dir, "sessions", `${idToDirName(sessionId)}.json`);
        expect((await stat(sessionFile)).mode & 0o777).toBe(0o600);
        const ckpt = join(t.dir, "runs", idToDirName(modelId), "weights", "ckpt");
        for (const f of await readdir(ckpt)) {
          expect((await stat(join(ckpt, f))).mode & 0o777, f).toBe(0o600);
        }
      } finally {
        await s.close();
        await e.close();
      }
    } finally {
      await t.cleanup();
    }
  });

  it("writes the tiny-bytes tokenizer it generates under its data dir", async () => {
    const t = await tempDir("hostile-tokenizer");
    try {
      const s = await startTestServer(t.dir);
      try {
        const a = new Raw(s.url);
        await a.createModel(await newSession(a), 0, MODEL, { rank: 2, seed: 1 });
        const names = await readdir(join(t.dir, "tokenizers"));
        expect(names.some((n) => n.startsWith("tiny-bytes"))).toBe(true);
      } finally {
        await s.close();
      }
    } finally {
      await t.cleanup();
    }
  });
});

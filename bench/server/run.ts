/**
 * Local server benchmark (tiny-bytes preset on the real local engine):
 *  1. small calls (session_heartbeat, get_info) per second at 1, 10 and 100 concurrent clients,
 *     against a baseline of `GET healthz` (the HTTP floor of this machine) measured in the same run;
 *  2. `asample` futures completed per second (submit + long-poll) at 1, 10 and 100 clients,
 *     against the engine's own `sample` throughput at the same concurrency, and against an instant
 *     engine (the test double), which shows the server's own ceiling;
 *  3. server overhead per forward_backward: protobuf submit + poll through HTTP vs calling the
 *     engine directly on the same batch.
 *
 *   npx tsx bench/server/run.ts [--seconds 3]
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Agent, request } from "undici";
import { makeDatum } from "../../src/client/types/datum.js";
import { ModelInput } from "../../src/client/types/model-input.js";
import { encodeForwardBackwardRequest } from "../../src/client/wire/proto.js";
import { createLocalEngine } from "../../src/local/engine/local-engine.js";
import { startLocalServer } from "../../src/local/server/server.js";
import { EngineDouble } from "../../test/server/engine-double.js";

const { values } = parseArgs({ options: { seconds: { type: "string", default: "3" } } });
const SECONDS = Number(values.seconds);
const CONCURRENCY = [1, 10, 100];
const PRESET = "tiny-bytes";

const agent = new Agent({ connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });

async function call(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const isBytes = body instanceof Uint8Array;
  const res = await request(url, {
    method: method as "POST",
    dispatcher: agent,
    headers: {
      "content-type": isBytes ? "application/x-protobuf" : "application/json",
      ...headers,
    },
    ...(body === undefined ? {} : { body: isBytes ? body : JSON.stringify(body) }),
  });
  const buf = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode !== 200)
    throw new Error(`${method} ${url}: ${res.statusCode} ${buf.toString()}`);
  const ct = String(res.headers["content-type"] ?? "");
  return ct.includes("json")
    ? (JSON.parse(buf.toString()) as Record<string, unknown>)
    : { bytes: buf };
}

async function poll(base: string, requestId: string, accept = "application/x-protobuf") {
  for (;;) {
    const r = await call(
      `${base}/api/v1/retrieve_future`,
      "POST",
      { request_id: requestId, allow_metadata_only: false },
      { accept },
    );
    if (r.type === "try_again") continue;
    if ("error" in r) throw new Error(String(r.error));
    return r;
  }
}

/**
 * Runs `op` in `clients` concurrent loops for SECONDS (after a short warm-up); returns completed
 * ops per second and the CPU microseconds of this process (client loops + server + engine threads)
 * per op, which unlike the rate does not depend on how busy the rest of the machine is.
 */
async function throughput(
  clients: number,
  op: (client: number) => Promise<void>,
): Promise<{ perSec: number; cpuUsPerOp: number }> {
  const warm = performance.now() + Math.min(500, SECONDS * 250);
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (performance.now() < warm) await op(c);
    }),
  );
  const deadline = performance.now() + SECONDS * 1000;
  let done = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (performance.now() < deadline) {
        await op(c);
        done++;
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return {
    perSec: done / ((performance.now() - t0) / 1000),
    cpuUsPerOp: (cpu.user + cpu.system) / Math.max(1, done),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), "tinker-ts-bench-server-"));
  const engine = await createLocalEngine({ presets: true, resolveUnknown: false });
  const server = await startLocalServer({
    dataDir,
    engine,
    logger: { info() {}, warn() {}, error: console.error },
  });
  const base = server.url;
  const tables: Record<string, Array<Record<string, string | number>>> = {
    small: [],
    sample: [],
    fwd: [],
  };
  const results: Record<string, unknown> = {
    preset: PRESET,
    seconds: SECONDS,
    node: process.version,
    cpus: cpus().length,
    // Rates depend on what else the machine runs; CPU per op much less so.
    loadAverageAtStart: loadavg(),
  };
  try {
    const { session_id: sid } = await call(`${base}/api/v1/create_session`, "POST", {
      tags: [],
      user_metadata: {},
      type: "create_session",
    });
    const created = await call(`${base}/api/v1/create_model`, "POST", {
      session_id: sid,
      model_seq_id: 0,
      base_model: PRESET,
      lora_config: { rank: 8, seed: 1 },
      type: "create_model",
    });
    await poll(base, String(created.request_id), "application/json");
    const modelId = String(created.model_id);
    const sampler = await call(`${base}/api/v1/create_sampling_session`, "POST", {
      session_id: sid,
      sampling_session_seq_id: 0,
      base_model: PRESET,
      type: "create_sampling_session",
    });
    const samplerId = String(sampler.sampling_session_id);

    // 1. small calls
    const smallOps: Record<string, () => Promise<void>> = {
      healthz: async () => {
        await call(`${base}/api/v1/healthz`, "GET");
      },
      session_heartbeat: async () => {
        await call(`${base}/api/v1/session_heartbeat`, "POST", {
          session_id: sid,
          type: "session_heartbeat",
        });
      },
      get_info: async () => {
        await call(`${base}/api/v1/get_info`, "POST", { model_id: modelId, type: "get_info" });
      },
    };
    const perOp = (): Record<string, Record<number, number>> =>
      Object.fromEntries(Object.keys(smallOps).map((name) => [name, {}]));
    const small = perOp();
    const cpuUs = perOp();
    for (const c of CONCURRENCY) {
      for (const [name, op] of Object.entries(smallOps)) {
        const r = await throughput(c, op);
        small[name]![c] = r.perSec;
        cpuUs[name]![c] = r.cpuUsPerOp;
      }
      tables.small!.push({
        clients: c,
        "healthz/s (baseline)": small.healthz![c]!.toFixed(0),
        "heartbeat/s": small.session_heartbeat![c]!.toFixed(0),
        "get_info/s": small.get_info![c]!.toFixed(0),
        "heartbeat/healthz": (small.session_heartbeat![c]! / small.healthz![c]!).toFixed(2),
        "CPU us/op healthz": cpuUs.healthz![c]!.toFixed(0),
        "CPU us/op heartbeat": cpuUs.session_heartbeat![c]!.toFixed(0),
        "CPU us/op get_info": cpuUs.get_info![c]!.toFixed(0),
      });
    }
    results.smallCallsPerSec = small;
    results.smallCallsCpuUsPerOp = cpuUs;

    // 2. asample futures/s vs engine.sample at the same concurrency
    const prompt = ModelInput.fromInts([104, 101, 108, 108, 111]);
    const params = { maxTokens: 8, temperature: 1, topK: -1, topP: 1 };
    let seq = 0;
    const sampleRates: Record<number, { server: number; engine: number }> = {};
    for (const c of CONCURRENCY) {
      const { perSec: engineRate } = await throughput(c, async () => {
        await engine.sample({
          baseModel: PRESET,
          prompt: prompt.toInt32Array(),
          numSamples: 1,
          params,
          promptLogprobs: false,
          topkPromptLogprobs: 0,
        });
      });
      const { perSec: serverRate } = await throughput(c, async () => {
        const sub = await call(`${base}/api/v1/asample`, "POST", {
          num_samples: 1,
          prompt: { chunks: [{ tokens: [104, 101, 108, 108, 111], type: "encoded_text" }] },
          sampling_params: { max_tokens: 8, temperature: 1, top_k: -1, top_p: 1 },
          sampling_session_id: samplerId,
          seq_id: seq++,
          prompt_logprobs: false,
          topk_prompt_logprobs: 0,
          type: "sample",
        });
        await poll(base, String(sub.request_id));
      });
      sampleRates[c] = { server: serverRate, engine: engineRate };
      tables.sample!.push({
        clients: c,
        "engine.sample (baseline)": engineRate.toFixed(1),
        "server asample": serverRate.toFixed(1),
        "server/engine": (serverRate / engineRate).toFixed(2),
      });
    }
    results.asampleFuturesPerSec = sampleRates;

    // 2b. the server's own ceiling: the same asample traffic against an instant engine
    const ceilingDir = await mkdtemp(join(tmpdir(), "tinker-ts-bench-server-ceiling-"));
    const instant = new EngineDouble();
    const ceilingServer = await startLocalServer({
      dataDir: ceilingDir,
      engine: instant,
      logger: { info() {}, warn() {}, error: console.error },
    });
    try {
      const cb = ceilingServer.url;
      const { session_id: csid } = await call(`${cb}/api/v1/create_session`, "POST", {});
      const cs = await call(`${cb}/api/v1/create_sampling_session`, "POST", {
        session_id: csid,
        sampling_session_seq_id: 0,
        base_model: "double-model",
      });
      const ceiling: Record<number, { futuresPerSec: number; cpuUsPerFuture: number }> = {};
      for (const c of CONCURRENCY) {
        const { perSec: rate, cpuUsPerOp } = await throughput(c, async () => {
          const sub = await call(`${cb}/api/v1/asample`, "POST", {
            num_samples: 1,
            prompt: { chunks: [{ tokens: [104, 101, 108, 108, 111], type: "encoded_text" }] },
            sampling_params: { max_tokens: 8 },
            sampling_session_id: cs.sampling_session_id,
            seq_id: seq++,
            type: "sample",
          });
          await poll(cb, String(sub.request_id));
        });
        ceiling[c] = { futuresPerSec: rate, cpuUsPerFuture: cpuUsPerOp };
        tables.sample![CONCURRENCY.indexOf(c)]!["server, instant engine (ceiling)"] =
          rate.toFixed(0);
        tables.sample![CONCURRENCY.indexOf(c)]!["CPU us/future (client+server)"] =
          cpuUsPerOp.toFixed(0);
      }
      results.asampleServerCeiling = ceiling;
    } finally {
      await ceilingServer.close();
      await rm(ceilingDir, { recursive: true, force: true });
    }

    // 3. forward_backward overhead
    const tokens = Array.from({ length: 128 }, (_, i) => (i * 7) % 256);
    const data = Array.from({ length: 4 }, () =>
      makeDatum(ModelInput.fromInts(tokens.slice(0, -1)), {
        target_tokens: tokens.slice(1),
        weights: tokens.slice(1).map(() => 1),
      }),
    );
    const direct: number[] = [];
    const viaServer: number[] = [];
    let fbSeq = 1;
    for (let i = 0; i < 12; i++) {
      let t = performance.now();
      await engine.forwardBackward(modelId, data, "cross_entropy", undefined, true);
      direct.push(performance.now() - t);
      t = performance.now();
      const body = encodeForwardBackwardRequest({
        modelId,
        seqId: fbSeq++,
        data,
        lossFn: "cross_entropy",
        forwardOnly: true,
      });
      const sub = await call(`${base}/api/v1/forward_backward`, "POST", body);
      await poll(base, String(sub.request_id));
      viaServer.push(performance.now() - t);
    }
    const d = median(direct.slice(2));
    const s = median(viaServer.slice(2));
    results.forwardBackward = {
      directMs: d,
      serverMs: s,
      overheadMs: s - d,
      ratio: s / d,
      datums: 4,
      tokensPerDatum: 127,
    };
    tables.fwd!.push({
      "engine direct (baseline)": d.toFixed(2),
      "via server": s.toFixed(2),
      "overhead ms": (s - d).toFixed(2),
      "server/engine": (s / d).toFixed(3),
    });
  } finally {
    await server.close();
    await engine.close();
    await agent.close();
    await rm(dataDir, { recursive: true, force: true });
  }
  console.log(
    "\nSmall calls per second (higher is better); healthz is the HTTP floor of this machine",
  );
  console.table(tables.small);
  console.log(
    "\nasample futures per second (submit + long-poll), vs engine.sample at the same concurrency",
  );
  console.table(tables.sample);
  console.log(
    "\nforward pass of 4 x 127 tokens, median ms: via the server (protobuf) vs the engine directly",
  );
  console.table(tables.fwd);
  await mkdir("bench/results", { recursive: true });
  await writeFile("bench/results/server.json", `${JSON.stringify(results, null, 2)}\n`);
  console.log("wrote bench/results/server.json");
}

await main();

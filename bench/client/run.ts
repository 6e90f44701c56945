/**
 * Client runtime benchmark.
 *
 * 1. forward_backward of 128 datums x 2048 tokens: encode (protobuf / JSON) and submit + fetch the
 *    result through `TrainingClient.forwardBackward`, against an in-process node:http server that
 *    answers like Tinker. Baseline: a raw undici POST of the same request bytes plus the same
 *    retrieve_future exchange, in the same run.
 * 2. 1,000 concurrent `SamplingClient.sample` calls. Baseline: the same 2,000 HTTP exchanges
 *    (asample + retrieve_future) issued with raw undici at the same concurrency.
 *
 * Run: npx tsx bench/client/run.ts   (writes bench/results/client.json)
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { Agent, request } from "undici";
import { ServiceClient } from "../../src/client/service-client.js";
import { makeDatum } from "../../src/client/types/datum.js";
import { ModelInput } from "../../src/client/types/model-input.js";
import type { ForwardBackwardOutput, SampleResponse } from "../../src/client/types/outputs.js";
import { TensorData } from "../../src/client/types/tensor-data.js";
import {
  encodeForwardBackwardOutput,
  encodeForwardBackwardRequest,
  encodeSampleResponse,
} from "../../src/client/wire/proto.js";
import { forwardBackwardJsonBody, sampleBody } from "../../src/client/wire/requests.js";
import { writeBenchResults } from "../write-results.js";

const DATUMS = 128;
const TOKENS = 2048;
const SAMPLES = 1000;
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);

// ---------------------------------------------------------------------------------------------
// A server that answers like Tinker, with pre-encoded results.

function buildData() {
  return Array.from({ length: DATUMS }, (_, d) => {
    const tokens = new Int32Array(TOKENS + 1);
    for (let i = 0; i < tokens.length; i++) tokens[i] = (i * 31 + d * 7) % 151_000;
    const weights = new Float32Array(TOKENS).fill(1);
    return makeDatum(ModelInput.fromInts(tokens.subarray(0, TOKENS)), {
      target_tokens: tokens.slice(1),
      weights,
    });
  });
}

function fwdOutput(): ForwardBackwardOutput {
  return {
    lossFnOutputType: "ArrayRecord",
    lossFnOutputs: Array.from({ length: DATUMS }, () => ({
      logprobs: TensorData.fromTyped(new Float32Array(TOKENS).fill(-1.5)),
    })),
    metrics: { "loss:sum": DATUMS * TOKENS * 1.5 },
  };
}

const SAMPLE_RESULT: SampleResponse = {
  sequences: [
    {
      stopReason: "length",
      tokens: Array.from({ length: 16 }, (_, i) => i + 1),
      logprobs: new Array(16).fill(-0.5),
    },
  ],
  promptCacheHitTokens: 0,
};

async function startServer() {
  const fwdProto = Buffer.from(encodeForwardBackwardOutput(fwdOutput()));
  const sampleProto = Buffer.from(encodeSampleResponse(SAMPLE_RESULT));
  let next = 0;
  const kinds = new Map<string, "fwd" | "sample" | "json">();
  const json = (res: ServerResponse, v: unknown) => {
    const b = Buffer.from(JSON.stringify(v));
    res.writeHead(200, { "content-type": "application/json", "content-length": b.length });
    res.end(b);
  };
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    switch (req.url) {
      case "/api/v1/client/config":
        return json(res, {});
      case "/api/v1/client/dynamic_config":
        return json(res, { refresh_interval_sec: 300 });
      case "/api/v1/create_session":
        return json(res, { session_id: "bench", type: "create_session" });
      case "/api/v1/session_heartbeat":
        return json(res, { type: "session_heartbeat" });
      case "/api/v1/create_model": {
        const id = `r${next++}`;
        kinds.set(id, "json");
        return json(res, { request_id: id, model_id: "bench:train:0" });
      }
      case "/api/v1/create_sampling_session":
        return json(res, { sampling_session_id: "bench:sample:0" });
      case "/api/v1/forward_backward":
      case "/api/v1/asample": {
        const id = `r${next++}`;
        kinds.set(id, req.url === "/api/v1/asample" ? "sample" : "fwd");
        return json(res, { request_id: id });
      }
      case "/api/v1/retrieve_future": {
        const { request_id } = JSON.parse(body.toString()) as { request_id: string };
        const kind = kinds.get(request_id);
        kinds.delete(request_id);
        if (kind === "json") return json(res, { model_id: "bench:train:0", type: "create_model" });
        const proto = (req.headers.accept ?? "").includes("protobuf");
        if (kind === "fwd") {
          if (!proto)
            return json(res, {
              loss_fn_output_type: "ArrayRecord",
              loss_fn_outputs: [],
              metrics: {},
            });
          res.writeHead(200, {
            "content-type": "application/x-protobuf",
            "content-length": fwdProto.length,
          });
          return res.end(fwdProto);
        }
        res.writeHead(200, {
          "content-type": "application/x-protobuf",
          "content-length": sampleProto.length,
        });
        return res.end(sampleProto);
      }
      default:
        res.writeHead(404).end();
    }
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

// ---------------------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeIt(n: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  await fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** Median times of `a` and `b`, measured alternately so background load hits both alike. */
async function compare(
  n: number,
  a: () => PromiseLike<unknown>,
  b: () => PromiseLike<unknown>,
): Promise<[number, number]> {
  await a();
  await b();
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < n; i++) {
    let t0 = performance.now();
    await a();
    ta.push(performance.now() - t0);
    t0 = performance.now();
    await b();
    tb.push(performance.now() - t0);
  }
  return [median(ta), median(tb)];
}

async function rawExchange(
  agent: Agent,
  url: string,
  path: string,
  body: Uint8Array | string,
  contentType: string,
  accept: string,
) {
  const res = await request(url + path, {
    method: "POST",
    body,
    headers: { "content-type": contentType, "x-api-key": "tml-bench" },
    dispatcher: agent,
  });
  const { request_id } = (await res.body.json()) as { request_id: string };
  const poll = await request(`${url}/api/v1/retrieve_future`, {
    method: "POST",
    body: JSON.stringify({ request_id, allow_metadata_only: true }),
    headers: { "content-type": "application/json", accept, "x-api-key": "tml-bench" },
    dispatcher: agent,
  });
  await poll.body.arrayBuffer();
}

async function main() {
  const { server, url } = await startServer();
  const data = buildData();
  const rows: Array<Record<string, string | number>> = [];
  const results: Record<string, unknown> = {
    datums: DATUMS,
    tokens: TOKENS,
    samples: SAMPLES,
    repeats: REPEATS,
  };

  const protoBytes = encodeForwardBackwardRequest({
    modelId: "bench:train:0",
    seqId: 1,
    data,
    lossFn: "cross_entropy",
  });
  const jsonText = JSON.stringify(
    forwardBackwardJsonBody({ modelId: "bench:train:0", seqId: 1, data, lossFn: "cross_entropy" }),
  );
  const protoMB = protoBytes.length / 1e6;
  const jsonMB = Buffer.byteLength(jsonText) / 1e6;

  const encProto = await timeIt(REPEATS, () =>
    encodeForwardBackwardRequest({
      modelId: "bench:train:0",
      seqId: 1,
      data,
      lossFn: "cross_entropy",
    }),
  );
  const encJson = await timeIt(REPEATS, () =>
    JSON.stringify(
      forwardBackwardJsonBody({
        modelId: "bench:train:0",
        seqId: 1,
        data,
        lossFn: "cross_entropy",
      }),
    ),
  );
  rows.push({
    case: "encode fwd/bwd protobuf",
    MB: protoMB.toFixed(2),
    "ms (median)": encProto.toFixed(1),
    "MB/s": (protoMB / (encProto / 1000)).toFixed(0),
    "vs baseline": "-",
  });
  rows.push({
    case: "encode fwd/bwd JSON",
    MB: jsonMB.toFixed(2),
    "ms (median)": encJson.toFixed(1),
    "MB/s": (jsonMB / (encJson / 1000)).toFixed(0),
    "vs baseline": "-",
  });

  const agent = new Agent({ connections: 64 });
  for (const wireFormat of ["protobuf", "json"] as const) {
    const service = new ServiceClient({
      apiKey: "tml-bench",
      baseUrl: url,
      logLevel: "off",
      wireFormat,
    });
    const tc = await service.createLoraTrainingClient("bench/model");
    const bytes = wireFormat === "protobuf" ? protoBytes : jsonText;
    const [client, raw] = await compare(
      REPEATS,
      () => tc.forwardBackward(data, "cross_entropy"),
      () =>
        rawExchange(
          agent,
          url,
          "/api/v1/forward_backward",
          bytes,
          wireFormat === "protobuf" ? "application/x-protobuf" : "application/json",
          wireFormat === "protobuf" ? "application/x-protobuf" : "application/json",
        ),
    );
    const mb = wireFormat === "protobuf" ? protoMB : jsonMB;
    rows.push({
      case: `forwardBackward submit+result (${wireFormat})`,
      MB: mb.toFixed(2),
      "ms (median)": client.toFixed(1),
      "MB/s": (mb / (client / 1000)).toFixed(0),
      "vs baseline": `${(client / raw).toFixed(2)}x`,
    });
    rows.push({
      case: `  raw undici POST same bytes (${wireFormat})`,
      MB: mb.toFixed(2),
      "ms (median)": raw.toFixed(1),
      "MB/s": (mb / (raw / 1000)).toFixed(0),
      "vs baseline": "1.00x",
    });
    results[`fwdbwd_${wireFormat}`] = {
      clientMs: client,
      rawMs: raw,
      mb,
      ratio: client / raw,
      encodeMs: wireFormat === "protobuf" ? encProto : encJson,
    };
    await service.close();
  }

  // 1,000 concurrent samples.
  const service = new ServiceClient({ apiKey: "tml-bench", baseUrl: url, logLevel: "off" });
  const sc = await service.createSamplingClient({ baseModel: "bench/model" });
  const prompt = ModelInput.fromInts(Array.from({ length: 64 }, (_, i) => i + 1));
  const sampleJson = JSON.stringify(
    sampleBody({
      samplingSessionId: "bench:sample:0",
      seqId: 0,
      prompt,
      numSamples: 1,
      samplingParams: { maxTokens: 16 },
    }),
  );
  const rawAgent = new Agent({ connections: 1000 });
  const [clientSample, rawSample] = await compare(
    REPEATS,
    () =>
      Promise.all(Array.from({ length: SAMPLES }, () => sc.sample(prompt, 1, { maxTokens: 16 }))),
    () =>
      Promise.all(
        Array.from({ length: SAMPLES }, () =>
          rawExchange(
            rawAgent,
            url,
            "/api/v1/asample",
            sampleJson,
            "application/json",
            "application/x-protobuf",
          ),
        ),
      ),
  );
  rows.push({
    case: `${SAMPLES} concurrent sample()`,
    MB: "-",
    "ms (median)": clientSample.toFixed(1),
    "MB/s": `${(SAMPLES / (clientSample / 1000)).toFixed(0)} req/s`,
    "vs baseline": `${(clientSample / rawSample).toFixed(2)}x`,
  });
  rows.push({
    case: `  raw undici ${SAMPLES} x (asample + poll)`,
    MB: "-",
    "ms (median)": rawSample.toFixed(1),
    "MB/s": `${(SAMPLES / (rawSample / 1000)).toFixed(0)} req/s`,
    "vs baseline": "1.00x",
  });
  results.sample = {
    clientMs: clientSample,
    rawMs: rawSample,
    clientReqPerSec: SAMPLES / (clientSample / 1000),
    rawReqPerSec: SAMPLES / (rawSample / 1000),
    ratio: clientSample / rawSample,
  };
  await service.close();
  await agent.close();
  await rawAgent.close();
  server.close();

  console.table(rows);
  results.rows = rows;
  writeBenchResults("client", results);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

/**
 * Wire conformance: replays the official Python SDK's recorded requests
 * (`test/fixtures/wire/*.jsonl`) against the server, adapting ids (session, request and
 * base model), and decodes every answer with the client's wire codecs. Protobuf request bodies are
 * sent as recorded, byte for byte, except for the model id field.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { z } from "zod";
import { decodeForwardBackwardOutput, decodeSampleResponse } from "../../src/client/wire/proto.js";
import {
  checkpointsListSchema,
  clientConfigSchema,
  createModelResponseSchema,
  createSamplingSessionResponseSchema,
  createSessionResponseSchema,
  dynamicConfigSchema,
  forwardBackwardOutputSchema,
  optimStepResponseSchema,
  parseResponse,
  sampleResponseSchema,
  saveWeightsForSamplerResponseSchema,
  sessionHeartbeatResponseSchema,
  telemetryResponseSchema,
  untypedFutureSchema,
} from "../../src/client/wire/responses.js";
import type { LocalServer } from "../../src/local/server/server.js";
import { WIRE_DIR } from "../fixture-paths.js";
import { startTestServer, tempDir } from "./helpers.js";
import { realEngine } from "./real-engine.js";

const FIXTURES = ["wire-log-0.25.0.jsonl", "wire-log-0.24.1.jsonl"];
const PASS_HEADERS = new Set([
  "content-type",
  "accept",
  "content-encoding",
  "x-tinker-request-type",
  "x-tinker-request-iteration",
  "x-tinker-sampling-backpressure",
  "user-agent",
  "x-idempotency-key",
  "x-stainless-retry-count",
]);

interface Exchange {
  method: string;
  path: string;
  headers: Array<[string, string]>;
  body?: unknown;
  body_hex?: string;
  response: { status: number; body?: Record<string, unknown>; content_type?: string };
}

const RESULT_SCHEMAS: Record<string, z.ZodType> = {
  CreateModel: createModelResponseSchema,
  OptimStep: optimStepResponseSchema,
  SaveWeightsForSampler: saveWeightsForSamplerResponseSchema,
};

function direct(path: string): z.ZodType | undefined {
  if (path.endsWith("/client/config")) return clientConfigSchema;
  if (path.endsWith("/client/dynamic_config")) return dynamicConfigSchema;
  if (path.endsWith("/create_session")) return createSessionResponseSchema;
  if (path.endsWith("/create_sampling_session")) return createSamplingSessionResponseSchema;
  if (path.endsWith("/session_heartbeat")) return sessionHeartbeatResponseSchema;
  if (path.endsWith("/telemetry")) return telemetryResponseSchema;
  if (path.endsWith("/checkpoints")) return checkpointsListSchema;
  return undefined;
}

/** Replaces the model id (field 1, first in the message) of a recorded protobuf body. */
function withModelId(bytes: Uint8Array, modelId: string): Uint8Array {
  expect(bytes[0]).toBe(0x0a);
  let len = 0;
  let shift = 0;
  let at = 1;
  for (;;) {
    const b = bytes[at++]!;
    len |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) break;
    shift += 7;
  }
  const rest = bytes.subarray(at + len);
  const id = Buffer.from(modelId, "utf8");
  const head: number[] = [0x0a];
  let n = id.length;
  while (n >= 0x80) {
    head.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  head.push(n);
  return new Uint8Array(Buffer.concat([Buffer.from(head), id, rest]));
}

describe("wire fixtures replayed against the server (real engine, tiny-bytes)", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let server: LocalServer;
  let closeEngine: () => Promise<void>;
  let model: string;

  beforeAll(async () => {
    tmp = await tempDir("server-wire");
    const e = await realEngine();
    closeEngine = e.close;
    model = e.model;
    server = await startTestServer(tmp.dir, e.engine);
  });
  afterAll(async () => {
    await server.close();
    await closeEngine();
    await tmp.cleanup();
  });

  for (const fixture of FIXTURES) {
    it(`accepts every request of ${fixture} and its answers decode with the client codecs`, async () => {
      const path = `${WIRE_DIR}/${fixture}`;
      const exchanges = readFileSync(path, "utf8")
        .split("\n")
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as Exchange);
      const ids = new Map<string, string>(); // recorded id -> our id
      const adaptText = (s: string): string => {
        let out = s;
        for (const [from, to] of ids) out = out.split(from).join(to);
        return out.replace(/^Qwen\/Qwen3-8B$/, model);
      };
      const adapt = (v: unknown): unknown => {
        if (typeof v === "string") return adaptText(v);
        if (Array.isArray(v)) return v.map(adapt);
        if (v && typeof v === "object") {
          return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, adapt(x)]));
        }
        return v;
      };
      const learn = (recorded: unknown, ours: unknown): void => {
        if (typeof recorded === "string" && typeof ours === "string" && recorded !== ours) {
          if (/^(sess|req)-\d+$/.test(recorded) || recorded.includes(":sample:"))
            ids.set(recorded, ours);
          return;
        }
        if (recorded && ours && typeof recorded === "object" && typeof ours === "object") {
          for (const [k, v] of Object.entries(recorded))
            learn(v, (ours as Record<string, unknown>)[k]);
        }
      };

      let decoded = 0;
      for (const ex of exchanges) {
        const headers: Record<string, string> = {};
        for (const [k, v] of ex.headers) if (PASS_HEADERS.has(k.toLowerCase())) headers[k] = v;
        let body: Uint8Array | string | undefined;
        if (ex.body_hex !== undefined) {
          const recordedModel = ids.get("model") ?? "";
          body = withModelId(new Uint8Array(Buffer.from(ex.body_hex, "hex")), recordedModel);
        } else if (ex.body !== undefined && ex.body !== null) {
          body = JSON.stringify(adapt(ex.body));
        }
        const url = `${server.url}${adaptText(ex.path)}`;
        let res: Response;
        let bytes: Uint8Array;
        for (;;) {
          // a real client polls again on try_again; the recording shows only the final poll
          res = await fetch(url, { method: ex.method, headers, ...(body ? { body } : {}) });
          bytes = new Uint8Array(await res.arrayBuffer());
          const again =
            (res.headers.get("content-type") ?? "").includes("json") &&
            (JSON.parse(Buffer.from(bytes).toString()) as { type?: string }).type === "try_again";
          if (!again) break;
        }
        const what = `${ex.method} ${ex.path}`;
        expect(res.status, `${what}: ${Buffer.from(bytes).toString()}`).toBe(200);
        const ct = res.headers.get("content-type") ?? "";
        if (ct.includes("application/x-protobuf")) {
          const type = headers["X-Tinker-Request-Type"];
          if (type === "Sample") {
            const out = decodeSampleResponse(bytes, what);
            expect(out.sequences.length).toBe(1);
            expect(out.sequences[0]!.tokens.length).toBeGreaterThan(0);
          } else {
            const out = decodeForwardBackwardOutput(bytes, what);
            expect(out.lossFnOutputs.length).toBe(1);
            expect(out.metrics["loss:sum"]).toBeTypeOf("number");
          }
          decoded++;
          continue;
        }
        const json = JSON.parse(Buffer.from(bytes).toString("utf8")) as Record<string, unknown>;
        expect(json.detail, what).toBeUndefined();
        expect(json.error, what).toBeUndefined();
        learn(ex.response.body, json);
        if (typeof json.model_id === "string" && !ids.has("model")) ids.set("model", json.model_id);
        let schema = direct(ex.path);
        if (ex.path.endsWith("/retrieve_future")) {
          const type = headers["X-Tinker-Request-Type"] ?? "";
          if (type === "ForwardBackward" || type === "Forward")
            schema = forwardBackwardOutputSchema;
          else if (type === "Sample") schema = sampleResponseSchema;
          else schema = RESULT_SCHEMAS[type];
        } else if (schema === undefined && "request_id" in json) {
          schema = untypedFutureSchema;
        }
        expect(schema, `${what}: no schema`).toBeDefined();
        parseResponse(schema!, json, what);
        decoded++;
      }
      expect(decoded).toBe(exchanges.length);
    });
  }
});

/**
 * The headers we send match the recorded requests of the official SDK 0.25.0
 * (`test/fixtures/wire/wire-log-0.25.0.jsonl`): same header names on every endpoint, and
 * the same values where they are protocol (Accept, Content-Type, read timeouts, request types).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServiceClient } from "../../src/client/service-client.js";
import { makeDatum } from "../../src/client/types/datum.js";
import { WIRE_DIR } from "../fixture-paths.js";
import { MockTinker } from "./helpers/mock-tinker.js";

const FIXTURE = join(WIRE_DIR, "wire-log-0.25.0.jsonl");

interface Recorded {
  method: string;
  path: string;
  headers: Array<[string, string]>;
}

const TRANSPORT = new Set(["host", "accept-encoding", "connection", "content-length"]);
const PROTOCOL_VALUES = [
  "accept",
  "content-type",
  "x-stainless-read-timeout",
  "x-tinker-request-type",
  "x-tinker-request-iteration",
  "x-tinker-sampling-backpressure",
  "x-stainless-retry-count",
];

describe("headers vs the 0.25.0 recording", () => {
  let mock: MockTinker;
  const fixture: Recorded[] = readFileSync(FIXTURE, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Recorded);

  beforeAll(async () => {
    mock = await MockTinker.start({
      flags: { pjwt_auth_enabled: false, proto_compress_fwdbwd: false },
    });
    mock.sessionId = "sess-0001";
    const service = new ServiceClient({
      apiKey: "tml-test",
      baseUrl: mock.url,
      logLevel: "off",
      telemetry: true,
    });
    const tc = await service.createLoraTrainingClient("Qwen/Qwen3-8B", { rank: 8 });
    const d = makeDatum([1, 2, 3], { target_tokens: [2, 3, 4], weights: [1, 1, 1] });
    await Promise.all([tc.forwardBackward([d], "cross_entropy"), tc.optimStep()]);
    const saved = await tc.saveWeightsForSampler("step-1");
    const sc = await service.createSamplingClient({ modelPath: saved.path });
    await sc.sample([1, 2, 3], 1, { maxTokens: 4, temperature: 0.7 });
    await tc.forward([d], "cross_entropy");
    mock.server.on("GET /api/v1/training_runs/sess-0001:train:0/checkpoints", () => ({
      json: { checkpoints: [] },
    }));
    await service.createRestClient().listCheckpoints("sess-0001:train:0");
    await service.close();
  });
  afterAll(async () => {
    await mock.close();
  });

  it("every recorded endpoint gets the same header names and protocol values", () => {
    const checked = new Set<string>();
    for (const rec of fixture) {
      if (rec.path === "/api/v1/session_heartbeat") continue; // timer-driven, checked in session tests
      const type = rec.headers.find(([k]) => k.toLowerCase() === "x-tinker-request-type")?.[1];
      const ours = mock.server.requests.find(
        (r) =>
          r.method === rec.method &&
          r.path === rec.path &&
          (type === undefined || r.headers["x-tinker-request-type"] === type),
      );
      expect(ours, `${rec.method} ${rec.path} ${type ?? ""}`).toBeDefined();
      const theirNames = rec.headers.map(([k]) => k.toLowerCase()).filter((k) => !TRANSPORT.has(k));
      for (const name of theirNames) {
        if (
          name === "x-tinker-create-promise-roundtrip-time" &&
          ours!.headers["x-tinker-request-iteration"] !== "0"
        )
          continue;
        expect(ours!.headers, `${rec.path}: ${name}`).toHaveProperty(name);
      }
      for (const name of PROTOCOL_VALUES) {
        const theirs = rec.headers.find(([k]) => k.toLowerCase() === name)?.[1];
        if (theirs === undefined) continue;
        // Python prints float seconds ("5.0"); we print "5".
        const norm = (v: string | undefined) =>
          name === "x-stainless-read-timeout" ? String(Number(v)) : v;
        expect(norm(ours!.headers[name]), `${rec.path}: ${name}`).toBe(norm(theirs));
      }
      checked.add(`${rec.method} ${rec.path}`);
    }
    expect(checked.size).toBeGreaterThanOrEqual(10);
  });
});

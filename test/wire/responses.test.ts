import { describe, expect, it } from "vitest";
import { APIResponseValidationError } from "../../src/client/errors.js";
import { TensorData } from "../../src/client/types/tensor-data.js";
import {
  type Checkpoint,
  CLIENT_CONFIG_DEFAULTS,
  classifyFutureResponse,
  parseResponse,
  responseSchemas,
  type TrainingRun,
  toWire,
} from "../../src/client/wire/responses.js";
import { header, loadWireLog, type WireRecord } from "./fixtures.js";

const RESULT_SCHEMA = {
  CreateModel: responseSchemas.createModel,
  OptimStep: responseSchemas.optimStep,
  SaveWeightsForSampler: responseSchemas.saveWeightsForSampler,
  ForwardBackward: responseSchemas.forwardBackward,
  Forward: responseSchemas.forwardBackward,
  Sample: responseSchemas.sample,
} as const;

function schemaFor(rec: WireRecord) {
  switch (rec.path) {
    case "/api/v1/client/config":
      return responseSchemas.clientConfig;
    case "/api/v1/client/dynamic_config":
      return responseSchemas.dynamicConfig;
    case "/api/v1/create_session":
      return responseSchemas.createSession;
    case "/api/v1/create_sampling_session":
      return responseSchemas.createSamplingSession;
    case "/api/v1/session_heartbeat":
      return responseSchemas.sessionHeartbeat;
    case "/api/v1/telemetry":
      return responseSchemas.telemetry;
    case "/api/v1/retrieve_future":
      return RESULT_SCHEMA[header(rec, "X-Tinker-Request-Type") as keyof typeof RESULT_SCHEMA];
    default:
      if (rec.path.endsWith("/checkpoints")) return responseSchemas.checkpointsList;
      return responseSchemas.untypedFuture;
  }
}

describe("recorded JSON responses parse", () => {
  for (const sdk of ["0.25.0", "0.24.1"] as const) {
    it(`every JSON answer in the ${sdk} log`, () => {
      const recs = loadWireLog(sdk).filter((r) => r.response.body !== undefined);
      expect(recs.length).toBeGreaterThan(10);
      for (const rec of recs) {
        const schema = schemaFor(rec);
        expect(schema, rec.path).toBeDefined();
        const c = classifyFutureResponse(rec.response.body);
        expect(c.kind).toBe("result");
        expect(() =>
          parseResponse(schema!, rec.response.body, `${rec.method} ${rec.path}`),
        ).not.toThrow();
      }
    });
  }

  it("gives typed values", () => {
    const log = loadWireLog("0.24.1");
    const fb = log.find((r) => header(r, "X-Tinker-Request-Type") === "ForwardBackward")!;
    const out = parseResponse(responseSchemas.forwardBackward, fb.response.body, "x");
    expect(out.metrics).toEqual({ "loss:sum": 3 });
    expect(out.lossFnOutputs[0]!["logprobs"]).toBeInstanceOf(TensorData);
    expect(out.lossFnOutputs[0]!["logprobs"]!.toArray()).toEqual([-1, -1, -1]);
    const ck = log.find((r) => r.path.endsWith("/checkpoints"))!;
    const list = parseResponse(responseSchemas.checkpointsList, ck.response.body, "x");
    expect(list.checkpoints[0]).toEqual({
      checkpointId: "sampler_weights/step-1",
      checkpointType: "sampler",
      time: new Date("2026-01-01T00:00:00Z"),
      tinkerPath: "tinker://sess-0001:train:0/sampler_weights/step-1",
      sizeBytes: 1234,
      public: false,
      expiresAt: undefined,
    });
    const s = log.find((r) => header(r, "X-Tinker-Request-Type") === "Sample")!;
    expect(parseResponse(responseSchemas.sample, s.response.body, "x")).toEqual({
      sequences: [
        { stopReason: "length", tokens: [100, 101, 102, 103], logprobs: [-0.5, -0.5, -0.5, -0.5] },
      ],
      promptCacheHitTokens: 0,
    });
  });
});

describe("client config", () => {
  it("fills every flag with the reference default", () => {
    expect(CLIENT_CONFIG_DEFAULTS).toMatchObject({
      pjwtAuthEnabled: false,
      credentialDefaultSource: "api_key",
      sampleDispatchBytesSemaphoreSize: 10 * 1024 * 1024,
      inflightResponseBytesSemaphoreSize: 50 * 1024 * 1024,
      parallelFwdbwdChunks: true,
      protoCompressFwdbwd: false,
      fwdbwdMaxChunkLen: 1024,
      fwdbwdMaxChunkBytesCount: 5_000_000,
      fwdbwdDispatchBytesSemaphoreSize: 50_000_000,
      billingExceptionMaxPauseDurationSec: 3600,
      sampleNoRetries: false,
      sampleEnableStuckDetection: true,
      sampleMaxConcurrentRequests: 2000,
      usePyqwestTransport: true,
      createModelViaLoadWeights: false,
    });
    const cfg = parseResponse(
      responseSchemas.clientConfig,
      {
        pjwt_auth_enabled: true,
        fwdbwd_max_chunk_len: 8,
        some_future_flag: 1,
        sample_no_retries: null,
      },
      "POST /api/v1/client/config",
    );
    expect(cfg.pjwtAuthEnabled).toBe(true);
    expect(cfg.fwdbwdMaxChunkLen).toBe(8);
    expect(cfg.sampleNoRetries).toBe(false);
  });
});

describe("validation errors name the endpoint and the field", () => {
  it.each([
    [responseSchemas.getInfo, { model_data: {} }, "POST /api/v1/get_info", "model_id"],
    [
      responseSchemas.getInfo,
      { model_id: "m", model_data: { model_name: 3 } },
      "POST /api/v1/get_info",
      "model_data.model_name",
    ],
    [
      responseSchemas.checkpointsList,
      {
        checkpoints: [
          { checkpoint_id: "weights/a", checkpoint_type: "training", time: "2026-01-01T00:00:00Z" },
        ],
      },
      "GET /api/v1/checkpoints",
      "checkpoints[0].tinker_path",
    ],
    [responseSchemas.trainingRuns, { training_runs: [] }, "GET /api/v1/training_runs", "cursor"],
    [
      responseSchemas.checkpoint,
      { checkpoint_id: "a", checkpoint_type: "training", time: "soon", tinker_path: "x" },
      "GET x",
      "time",
    ],
    [responseSchemas.untypedFuture, {}, "POST /api/v1/asample", "request_id"],
  ] as const)("%#", (schema, body, endpoint, field) => {
    try {
      parseResponse(schema, body, endpoint);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(APIResponseValidationError);
      const err = e as APIResponseValidationError;
      expect(err.message.startsWith(`${endpoint}: `)).toBe(true);
      expect(err.message).toContain(`${field}:`);
      expect(err.request).toBe(endpoint);
      expect(err.body).toBe(body);
    }
  });
});

describe("retrieve_future classification", () => {
  it("follows the reference order of checks", () => {
    expect(
      classifyFutureResponse({
        type: "try_again",
        request_id: "r",
        queue_state: "paused_capacity",
      }),
    ).toEqual({
      kind: "try_again",
      value: {
        type: "try_again",
        requestId: "r",
        queueState: "paused_capacity",
        queueStateReason: undefined,
      },
    });
    expect(
      classifyFutureResponse({ status: "complete_metadata", response_payload_size: 123 }),
    ).toEqual({
      kind: "complete_metadata",
      value: { status: "complete_metadata", responsePayloadSize: 123 },
    });
    expect(classifyFutureResponse({ error: "boom", category: "user" })).toEqual({
      kind: "failed",
      value: { error: "boom", category: "user" },
    });
    expect(classifyFutureResponse({ error: { detail: "x" } })).toEqual({
      kind: "failed",
      value: { error: '{"detail":"x"}', category: "unknown" },
    });
    expect(classifyFutureResponse({ metrics: {} })).toEqual({
      kind: "result",
      value: { metrics: {} },
    });
  });
});

describe("server-side builders round-trip through the client schemas", () => {
  const ck: Checkpoint = {
    checkpointId: "weights/0001",
    checkpointType: "training",
    time: new Date("2026-02-03T04:05:06.000Z"),
    tinkerPath: "tinker://run:train:0/weights/0001",
    sizeBytes: 42,
    public: true,
    expiresAt: new Date("2026-03-01T00:00:00.000Z"),
  };
  const run: TrainingRun = {
    trainingRunId: "run:train:0",
    baseModel: "Qwen/Qwen3-8B",
    modelOwner: "me",
    isLora: true,
    corrupted: false,
    loraRank: 32,
    lastRequestTime: new Date("2026-02-03T04:05:06.000Z"),
    lastCheckpoint: ck,
    lastSamplerCheckpoint: undefined,
    userMetadata: { camelKey: "kept as is" },
  };

  it("checkpoints, training runs, get_info, futures, config", () => {
    expect(parseResponse(responseSchemas.checkpoint, toWire.checkpoint(ck), "x")).toEqual(ck);
    const wireRun = toWire.trainingRun(run);
    expect(wireRun["user_metadata"]).toEqual({ camelKey: "kept as is" });
    expect(wireRun["last_request_time"]).toBe("2026-02-03T04:05:06.000Z");
    expect(parseResponse(responseSchemas.trainingRun, wireRun, "x")).toEqual(run);
    const runs = { trainingRuns: [run], cursor: { offset: 0, limit: 20, totalCount: 1 } };
    expect(parseResponse(responseSchemas.trainingRuns, toWire.trainingRuns(runs), "x")).toEqual(
      runs,
    );
    const info = {
      modelData: { arch: "qwen3", modelName: "Qwen/Qwen3-8B", tokenizerId: "Qwen/Qwen3-8B" },
      modelId: "m",
      isLora: true,
      loraRank: 8,
      modelName: "Qwen/Qwen3-8B",
    };
    const wireInfo = toWire.getInfo(info);
    expect(wireInfo["type"]).toBe("get_info");
    expect(wireInfo["model_data"]).toEqual({
      arch: "qwen3",
      model_name: "Qwen/Qwen3-8B",
      tokenizer_id: "Qwen/Qwen3-8B",
    });
    expect(parseResponse(responseSchemas.getInfo, wireInfo, "x")).toEqual(info);
    expect(toWire.future({ requestId: "r", modelId: "m" })).toEqual({
      request_id: "r",
      model_id: "m",
    });
    expect(
      toWire.tryAgain({ requestId: "r", queueState: "active", queueStateReason: undefined }),
    ).toEqual({
      type: "try_again",
      request_id: "r",
      queue_state: "active",
    });
    expect(toWire.optimStep({ metrics: { "grad_norm:mean": 1 } })).toEqual({
      metrics: { "grad_norm:mean": 1 },
    });
    const cfg = toWire.clientConfig({ pjwtAuthEnabled: false, fwdbwdMaxChunkLen: 16 });
    expect(cfg).toEqual({ pjwt_auth_enabled: false, fwdbwd_max_chunk_len: 16 });
    expect(
      parseResponse(responseSchemas.clientConfig, toWire.clientConfig(CLIENT_CONFIG_DEFAULTS), "x"),
    ).toEqual(CLIENT_CONFIG_DEFAULTS);
  });

  it("forward_backward and sample JSON", () => {
    const out = {
      lossFnOutputType: "ArrayRecord",
      lossFnOutputs: [{ logprobs: TensorData.fromTyped(new Float32Array([-0.1, -2]), [2]) }],
      metrics: { "loss:sum": 2.1 },
    };
    const back = parseResponse(responseSchemas.forwardBackward, toWire.forwardBackward(out), "x");
    expect(back.lossFnOutputs[0]!["logprobs"]!.data).toEqual(new Float32Array([-0.1, -2]));
    expect(toWire.forwardBackward(out).loss_fn_outputs[0]!["logprobs"]!.data).toEqual([
      Math.fround(-0.1),
      -2,
    ]);
    const s = {
      sequences: [{ stopReason: "stop" as const, tokens: [1], logprobs: [-0.5] }],
      promptLogprobs: [null, -1],
      topkPromptLogprobs: [null, [[3, -0.5]] as Array<[number, number]>],
      promptCacheHitTokens: 0,
    };
    expect(parseResponse(responseSchemas.sample, toWire.sample(s), "x")).toEqual(s);
  });
});

import { describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { makeDatum } from "../../src/client/types/datum.js";
import { ModelInput } from "../../src/client/types/model-input.js";
import { pythonFloatRepr, stringifyPythonStyle } from "../../src/client/wire/json-text.js";
import {
  clientConfigBody,
  computeLogprobsBody,
  createModelBody,
  createSamplingSessionBody,
  createSessionBody,
  forwardBackwardJsonBody,
  forwardJsonBody,
  getInfoBody,
  loadWeightsBody,
  optimStepBody,
  parseRequest,
  retrieveFutureBody,
  sampleBody,
  saveWeightsBody,
  saveWeightsForSamplerBody,
  sessionHeartbeatBody,
  setTtlBody,
  telemetryBody,
  weightsInfoBody,
} from "../../src/client/wire/requests.js";
import { header, loadWireLog, type WireRecord } from "./fixtures.js";

const MODEL = "sess-0001:train:0";

/** Build, with our builders, the body of a recorded request from the same inputs. */
function build(rec: WireRecord, sdk: string): unknown {
  const b = rec.body as Record<string, unknown>;
  switch (rec.path) {
    case "/api/v1/client/config":
    case "/api/v1/client/dynamic_config":
      return clientConfigBody(sdk);
    case "/api/v1/create_session":
      return createSessionBody({ tags: [], sdkVersion: sdk });
    case "/api/v1/create_model":
      return createModelBody({
        sessionId: "sess-0001",
        modelSeqId: 0,
        baseModel: "Qwen/Qwen3-8B",
        loraConfig: { rank: 8 },
      });
    case "/api/v1/retrieve_future":
      return retrieveFutureBody(b["request_id"] as string, true);
    case "/api/v1/optim_step":
      return optimStepBody({ modelId: MODEL, seqId: 2, adamParams: { learningRate: 1e-4 } });
    case "/api/v1/save_weights_for_sampler":
      return saveWeightsForSamplerBody({ modelId: MODEL, seqId: 3, path: "step-1" });
    case "/api/v1/create_sampling_session":
      return createSamplingSessionBody({
        sessionId: "sess-0001",
        samplingSessionSeqId: 0,
        modelPath: `tinker://${MODEL}/sampler_weights/step-1`,
      });
    case "/api/v1/asample":
      return sampleBody({
        samplingSessionId: "sess-0001:sample:0",
        seqId: 0,
        prompt: ModelInput.fromInts([1, 2, 3]),
        numSamples: 1,
        samplingParams: { maxTokens: 4, temperature: 0.7 },
      });
    case "/api/v1/forward_backward":
      return forwardBackwardJsonBody({
        modelId: MODEL,
        seqId: 1,
        data: [makeDatum([1, 2, 3], { target_tokens: [2, 3, 4], weights: [1, 1, 1] })],
        lossFn: "cross_entropy",
      });
    case "/api/v1/forward":
      return forwardJsonBody({
        modelId: MODEL,
        seqId: 4,
        data: [makeDatum([1, 2, 3], { target_tokens: [2, 3, 4], weights: [1, 1, 1] })],
        lossFn: "cross_entropy",
      });
    case "/api/v1/session_heartbeat":
      return sessionHeartbeatBody("sess-0001");
    case "/api/v1/telemetry": {
      const ev = (b["events"] as Array<Record<string, unknown>>)[0]!;
      return telemetryBody({
        events: [
          {
            event: "SESSION_START",
            eventId: ev["event_id"] as string,
            eventSessionIndex: 0,
            severity: "INFO",
            timestamp: ev["timestamp"] as string,
          },
        ],
        platform: "Linux",
        sdkVersion: sdk,
        sessionId: "sess-0001",
        processUuid: b["process_uuid"] as string,
      });
    }
    default:
      throw new Error(`no builder mapped for ${rec.path}`);
  }
}

for (const sdk of ["0.25.0", "0.24.1"] as const) {
  describe(`golden JSON bodies (${sdk} fixture)`, () => {
    const records = loadWireLog(sdk).filter((r) => r.body !== undefined);
    it.each(records.map((r, i) => [`${i} ${r.path}`, r] as const))("%s", (_name, rec) => {
      const ours = build(rec, sdk);
      // Same parsed object, same key order.
      expect(ours).toEqual(rec.body);
      expect(JSON.stringify(ours)).toBe(JSON.stringify(rec.body));
      // Byte-level: the reference's json.dumps text has exactly the recorded Content-Length.
      const text = stringifyPythonStyle(ours);
      expect(Buffer.byteLength(text)).toBe(Number(header(rec, "Content-Length")));
    });
  });
}

describe("python-style float text", () => {
  it.each([
    [1, "1.0"],
    [0, "0.0"],
    [0.7, "0.7"],
    [1e-4, "0.0001"],
    [1e-5, "1e-05"],
    [1e-12, "1e-12"],
    [1e16, "1e+16"],
    [1e15, "1000000000000000.0"],
    [-2.5e-7, "-2.5e-07"],
    [123.456, "123.456"],
    [1.5e300, "1.5e+300"],
  ])("%s -> %s", (x, want) => {
    expect(pythonFloatRepr(x)).toBe(want);
  });

  it("escapes non-ASCII like json.dumps", () => {
    expect(stringifyPythonStyle({ a: "é", b: [1, 2] })).toBe('{"a": "\\u00e9", "b": [1, 2]}');
  });
});

describe("request builders", () => {
  it("omits nulls and sends defaults", () => {
    expect(createSessionBody({ tags: ["a", "b", "a"], sdkVersion: "x", projectId: "p" })).toEqual({
      tags: ["a", "b"],
      user_metadata: {},
      sdk_version: "x",
      project_id: "p",
      type: "create_session",
    });
    expect(saveWeightsBody({ modelId: "m", seqId: 5, path: "ckpt" })).toEqual({
      model_id: "m",
      path: "ckpt",
      seq_id: 5,
      overwrite: false,
      type: "save_weights",
    });
    expect(saveWeightsForSamplerBody({ modelId: "m", seqId: 6, samplingSessionSeqId: 2 })).toEqual({
      model_id: "m",
      seq_id: 6,
      sampling_session_seq_id: 2,
      type: "save_weights_for_sampler",
    });
    expect(getInfoBody("m")).toEqual({ model_id: "m", type: "get_info" });
    expect(setTtlBody(null)).toEqual({ ttl_seconds: null });
    expect(weightsInfoBody("tinker://r/weights/a")).toEqual({
      tinker_path: "tinker://r/weights/a",
    });
    expect(
      createModelBody({
        sessionId: "s",
        modelSeqId: 1,
        baseModel: "b",
        loraConfig: { rank: 4, seed: 3, trainAttn: false },
        userMetadata: { k: "v" },
      }),
    ).toEqual({
      session_id: "s",
      model_seq_id: 1,
      base_model: "b",
      user_metadata: { k: "v" },
      lora_config: { rank: 4, seed: 3, train_unembed: true, train_mlp: true, train_attn: false },
      type: "create_model",
    });
  });

  it("builds both load_weights forms", () => {
    expect(
      loadWeightsBody({ modelId: "m", seqId: 1, path: "tinker://r/weights/x", optimizer: true }),
    ).toEqual({
      model_id: "m",
      seq_id: 1,
      path: "tinker://r/weights/x",
      optimizer: true,
      type: "load_weights",
    });
    expect(
      loadWeightsBody({
        sessionId: "s",
        modelSeqId: 0,
        path: "tinker://r/weights/x",
        optimizer: false,
        weightsAccessToken: "tok",
      }),
    ).toEqual({
      session_id: "s",
      model_seq_id: 0,
      path: "tinker://r/weights/x",
      optimizer: false,
      weights_access_token: "tok",
      type: "load_weights",
    });
  });

  it("compute_logprobs is a 1-token sample with prompt logprobs", () => {
    const body = computeLogprobsBody({
      samplingSessionId: "ss",
      seqId: 3,
      prompt: ModelInput.fromInts([5]),
    });
    expect(body.sampling_params).toEqual({ max_tokens: 1, temperature: 1, top_k: -1, top_p: 1 });
    expect(body.prompt_logprobs).toBe(true);
    expect(body.num_samples).toBe(1);
  });

  it("rejects bad input with the field named", () => {
    const cases: Array<[() => unknown, string]> = [
      [
        () =>
          createModelBody({
            sessionId: "s",
            modelSeqId: 0,
            baseModel: "b",
            loraConfig: { rank: 0 },
          }),
        "loraConfig.rank",
      ],
      [
        () =>
          createModelBody({
            sessionId: "s",
            modelSeqId: 0,
            baseModel: "b",
            loraConfig: { rank: 1, trainAttn: false, trainMlp: false, trainUnembed: false },
          }),
        "loraConfig",
      ],
      [() => createSamplingSessionBody({ sessionId: "s", samplingSessionSeqId: 0 }), "modelPath"],
      [
        () =>
          createSamplingSessionBody({ sessionId: "s", samplingSessionSeqId: 0, modelPath: "/x" }),
        "modelPath",
      ],
      [
        () =>
          sampleBody({ samplingSessionId: "s", prompt: ModelInput.fromInts([1]), numSamples: 0 }),
        "numSamples",
      ],
      [() => sampleBody({ prompt: ModelInput.fromInts([1]) }), "samplingSessionId"],
      [() => saveWeightsBody({ modelId: "m", seqId: 1, path: "x", ttlSeconds: 0 }), "ttlSeconds"],
      [
        () => loadWeightsBody({ modelId: "m", seqId: 1, path: "weights/x", optimizer: false }),
        "path",
      ],
      [() => optimStepBody({ modelId: "m", seqId: 1.5 }), "seqId"],
    ];
    for (const [fn, field] of cases) {
      try {
        fn();
        expect.unreachable(`expected a TinkerValidationError for ${field}`);
      } catch (e) {
        expect(e).toBeInstanceOf(TinkerValidationError);
        expect((e as TinkerValidationError).field).toBe(field);
      }
    }
  });
});

describe("server-side request schemas", () => {
  it("parse every recorded JSON body into camelCase values", () => {
    const log = [...loadWireLog("0.25.0"), ...loadWireLog("0.24.1")];
    const kinds: Record<string, Parameters<typeof parseRequest>[0]> = {
      "/api/v1/client/config": "clientConfig",
      "/api/v1/client/dynamic_config": "clientConfig",
      "/api/v1/create_session": "createSession",
      "/api/v1/create_model": "createModel",
      "/api/v1/retrieve_future": "retrieveFuture",
      "/api/v1/optim_step": "optimStep",
      "/api/v1/save_weights_for_sampler": "saveWeightsForSampler",
      "/api/v1/create_sampling_session": "createSamplingSession",
      "/api/v1/asample": "sample",
      "/api/v1/forward_backward": "forwardBackwardJson",
      "/api/v1/forward": "forwardJson",
      "/api/v1/session_heartbeat": "sessionHeartbeat",
      "/api/v1/telemetry": "telemetry",
    };
    for (const rec of log.filter((r) => r.body !== undefined)) {
      const kind = kinds[rec.path];
      expect(kind, rec.path).toBeDefined();
      expect(() => parseRequest(kind!, rec.body, `POST ${rec.path}`)).not.toThrow();
    }
    const sample = parseRequest(
      "sample",
      log.find((r) => r.path === "/api/v1/asample")!.body,
      "POST /api/v1/asample",
    );
    expect(sample.prompt.toInts()).toEqual([1, 2, 3]);
    expect(sample.samplingParams).toEqual({ maxTokens: 4, temperature: 0.7, topK: -1, topP: 1 });
    expect(sample.seqId).toBe(0);
    const fb = parseRequest(
      "forwardBackwardJson",
      log.find((r) => r.path === "/api/v1/forward_backward" && r.body)!.body,
      "POST /api/v1/forward_backward",
    );
    expect(fb.data[0]!.lossFnInputs["target_tokens"]!.toArray()).toEqual([2, 3, 4]);
    expect(fb.lossFn).toBe("cross_entropy");
    const opt = parseRequest(
      "optimStep",
      { model_id: "m", seq_id: 2, adam_params: { learning_rate: 0.5 } },
      "x",
    );
    expect(opt.adamParams).toEqual({
      learningRate: 0.5,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-12,
      weightDecay: 0,
      gradClipNorm: 0,
    });
  });

  it("tolerate unknown fields and name the missing field and endpoint", () => {
    expect(
      parseRequest(
        "getInfo",
        { model_id: "m", type: "get_info", extra: 1 },
        "POST /api/v1/get_info",
      ),
    ).toEqual({
      modelId: "m",
    });
    try {
      parseRequest(
        "createModel",
        { session_id: "s", model_seq_id: 0, lora_config: { rank: 1 } },
        "POST /api/v1/create_model",
      );
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(TinkerValidationError);
      expect((e as Error).message).toContain("POST /api/v1/create_model");
      expect((e as TinkerValidationError).field).toBe("base_model");
    }
    try {
      parseRequest(
        "forwardBackwardJson",
        {
          model_id: "m",
          seq_id: 1,
          forward_backward_input: {
            loss_fn: "cross_entropy",
            data: [
              {
                model_input: { chunks: [] },
                loss_fn_inputs: { w: { data: [1, 2], dtype: "float32", shape: [3] } },
              },
            ],
          },
        },
        "POST /api/v1/forward_backward",
      );
      expect.unreachable();
    } catch (e) {
      expect((e as TinkerValidationError).field).toMatch(
        /^forward_backward_input\.data\[0\]\.loss_fn_inputs\.w/,
      );
    }
    const load = parseRequest(
      "loadWeights",
      { session_id: "s", model_seq_id: 0, path: "tinker://r/weights/a" },
      "x",
    );
    expect(load.kind).toBe("create");
    expect(() => parseRequest("loadWeights", { path: "tinker://r/weights/a" }, "x")).toThrow(
      /model_id/,
    );
  });
});

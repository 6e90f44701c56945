import { describe, expect, it } from "vitest";
import { APIResponseValidationError, TinkerValidationError } from "../../src/client/errors.js";
import { makeDatum } from "../../src/client/types/datum.js";
import { ModelInput } from "../../src/client/types/model-input.js";
import { TensorData } from "../../src/client/types/tensor-data.js";
import {
  adamParamsFromJson,
  adamParamsToJson,
  datumFromJson,
  datumToJson,
  forwardBackwardOutputFromJson,
  loraConfigFromJson,
  loraConfigToJson,
  modelInputFromJson,
  modelInputToJson,
  sampleResponseFromJson,
  samplingParamsFromJson,
  samplingParamsToJson,
  tensorDataFromJson,
  tensorDataToJson,
} from "../../src/client/wire/json.js";

describe("TensorData JSON", () => {
  it("round-trips dense 1-D, 2-D and sparse CSR tensors", () => {
    const twoD = TensorData.fromTyped(new Int32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    expect(tensorDataToJson(twoD)).toEqual({
      data: [1, 2, 3, 4, 5, 6],
      dtype: "int64",
      shape: [2, 3],
    });
    const back = tensorDataFromJson(tensorDataToJson(twoD));
    expect(back.shape).toEqual([2, 3]);
    expect(back.toArray()).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const sparse = TensorData.fromCsr(new Float32Array([0.5, 2]), [0, 1, 1, 2], [2, 0], [3, 4]);
    const json = tensorDataToJson(sparse);
    expect(json).toEqual({
      data: [0.5, 2],
      dtype: "float32",
      shape: [3, 4],
      sparse_crow_indices: [0, 1, 1, 2],
      sparse_col_indices: [2, 0],
    });
    const s = tensorDataFromJson(json);
    expect(s.sparse).toBeDefined();
    expect(s.toArray()).toEqual(sparse.toArray());
    expect(tensorDataFromJson({ data: [1.5, 2], dtype: "float32" }).shape).toEqual([2]);
  });

  it("writes float32 values as the exact double of each float32 (like numpy tolist)", () => {
    const t = TensorData.fromTyped(new Float32Array([0.1, 1 / 3, 1]));
    const data = tensorDataToJson(t).data;
    expect(data).toEqual([Math.fround(0.1), Math.fround(1 / 3), 1]);
    expect(JSON.stringify(data)).toBe("[0.10000000149011612,0.3333333432674408,1]");
  });

  it.each([
    [{ data: [1, 2], dtype: "int32" }, "dtype"],
    [{ data: [1, 2], dtype: "int64", shape: [3] }, "shape"],
    [{ data: [1.5], dtype: "int64" }, "data"],
    [
      {
        data: [1],
        dtype: "float32",
        shape: [1],
        sparse_crow_indices: [0, 1],
        sparse_col_indices: [0],
      },
      "shape",
    ],
    [{ dtype: "float32" }, "data"],
  ])("rejects %j naming %s", (json, field) => {
    try {
      tensorDataFromJson(json);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(TinkerValidationError);
      expect((e as TinkerValidationError).field).toBe(field);
    }
  });
});

describe("ModelInput and Datum JSON", () => {
  it("round-trips every chunk kind", () => {
    const input = new ModelInput([
      { type: "encoded_text", tokens: new Int32Array([1, 2]) },
      { type: "image", data: new Uint8Array([137, 80, 78, 71]), format: "png", expectedTokens: 16 },
      { type: "image_asset_pointer", format: "jpeg", location: "https://x/y.jpg" },
      { type: "dmel", dmel: new Uint8Array([254, 1, 1, 2]) },
    ]);
    const json = modelInputToJson(input);
    expect(json.chunks).toEqual([
      { tokens: [1, 2], type: "encoded_text" },
      { data: "iVBORw==", format: "png", expected_tokens: 16, type: "image" },
      { format: "jpeg", location: "https://x/y.jpg", type: "image_asset_pointer" },
      { dmel: "/gEBAg==", type: "dmel" },
    ]);
    expect(modelInputFromJson(JSON.parse(JSON.stringify(json))).chunks).toEqual(input.chunks);
  });

  it("round-trips a datum and names the bad field", () => {
    const d = makeDatum([5, 6, 7], { target_tokens: [6, 7, 8], weights: [0, 1, 1] });
    const back = datumFromJson(JSON.parse(JSON.stringify(datumToJson(d))));
    expect(back.modelInput.toInts()).toEqual([5, 6, 7]);
    expect(back.lossFnInputs["weights"]!.toArray()).toEqual([0, 1, 1]);
    expect(() =>
      datumFromJson({
        model_input: { chunks: [{ type: "encoded_text", tokens: [-1] }] },
        loss_fn_inputs: {},
      }),
    ).toThrow(/model_input\.chunks\[0\]\.tokens\[0\]/);
    expect(() =>
      datumFromJson({ model_input: { chunks: [{ type: "video" }] }, loss_fn_inputs: {} }),
    ).toThrow(/model_input\.chunks\[0\]\.type/);
  });
});

describe("parameter JSON", () => {
  it("sampling params send temperature, top_k and top_p defaults and omit unset optionals", () => {
    expect(samplingParamsToJson({})).toEqual({ temperature: 1, top_k: -1, top_p: 1 });
    expect(samplingParamsToJson({ maxTokens: 8, seed: 3, stop: ["\n"], temperature: 0 })).toEqual({
      max_tokens: 8,
      seed: 3,
      stop: ["\n"],
      temperature: 0,
      top_k: -1,
      top_p: 1,
    });
    expect(samplingParamsFromJson({ max_tokens: 4, stop: [1, 2] })).toEqual({
      maxTokens: 4,
      stop: [1, 2],
      temperature: 1,
      topK: -1,
      topP: 1,
    });
    expect(() => samplingParamsFromJson({ top_p: 2 })).toThrow(/top_p/);
  });

  it("adam params always carry all six fields", () => {
    expect(adamParamsToJson()).toEqual({
      learning_rate: 1e-4,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-12,
      weight_decay: 0,
      grad_clip_norm: 0,
    });
    expect(adamParamsFromJson({ learning_rate: 3e-4, weight_decay: null })).toEqual({
      learningRate: 3e-4,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-12,
      weightDecay: 0,
      gradClipNorm: 0,
    });
  });

  it("lora config keeps seed only when set", () => {
    expect(loraConfigToJson({ rank: 16 })).toEqual({
      rank: 16,
      train_unembed: true,
      train_mlp: true,
      train_attn: true,
    });
    expect(Object.keys(loraConfigToJson({ rank: 16, seed: 1 }))).toEqual([
      "rank",
      "seed",
      "train_unembed",
      "train_mlp",
      "train_attn",
    ]);
    expect(loraConfigFromJson({ rank: 4 })).toEqual({
      rank: 4,
      trainUnembed: true,
      trainMlp: true,
      trainAttn: true,
    });
    expect(() => loraConfigFromJson({ rank: 0 })).toThrow(/rank/);
  });
});

describe("response JSON", () => {
  it("bad sample and forward_backward bodies are response-validation errors", () => {
    expect(() =>
      sampleResponseFromJson(
        { sequences: [{ stop_reason: "eos", tokens: [] }] },
        "POST /api/v1/retrieve_future",
      ),
    ).toThrow(APIResponseValidationError);
    expect(() => forwardBackwardOutputFromJson({ metrics: {} })).toThrow(/loss_fn_outputs/);
  });
});

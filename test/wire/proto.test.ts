import { describe, expect, it } from "vitest";
import { APIResponseValidationError, TinkerValidationError } from "../../src/client/errors.js";
import { makeDatum } from "../../src/client/types/datum.js";
import { ModelInput } from "../../src/client/types/model-input.js";
import type { ForwardBackwardOutput, SampleResponse } from "../../src/client/types/outputs.js";
import { TensorData } from "../../src/client/types/tensor-data.js";
import {
  decodeForwardBackwardOutput,
  decodeForwardBackwardRequest,
  decodeSampleResponse,
  decodeSamplingParams,
  encodeForwardBackwardOutput,
  encodeForwardBackwardRequest,
  encodeSampleResponse,
  encodeSamplingParams,
} from "../../src/client/wire/proto.js";
import { fromHex, hex, loadWireLog } from "./fixtures.js";

const log = loadWireLog("0.25.0");
const fwdbwd = log.filter((r) => r.path === "/api/v1/forward_backward");

describe("ForwardBackwardRequest golden bytes (0.25.0 fixture)", () => {
  it("forward_backward: same bytes as the recorded body", () => {
    const rec = fwdbwd[0]!;
    const bytes = encodeForwardBackwardRequest({
      modelId: "sess-0001:train:0",
      seqId: 1,
      data: [makeDatum([1, 2, 3], { target_tokens: [2, 3, 4], weights: [1, 1, 1] })],
      lossFn: "cross_entropy",
    });
    expect(hex(bytes)).toBe(rec.body_hex);
    expect(bytes.length).toBe(rec.body_len);
  });

  it("forward (forward_only) with the recorded map order", () => {
    const rec = fwdbwd[1]!;
    const bytes = encodeForwardBackwardRequest({
      modelId: "sess-0001:train:0",
      seqId: 4,
      data: [makeDatum([1, 2, 3], { weights: [1, 1, 1], target_tokens: [2, 3, 4] })],
      lossFn: "cross_entropy",
      forwardOnly: true,
    });
    expect(hex(bytes)).toBe(rec.body_hex);
  });

  it("decodes the recorded bodies back to the same datums", () => {
    for (const rec of fwdbwd) {
      const req = decodeForwardBackwardRequest(fromHex(rec.body_hex!));
      expect(req.modelId).toBe("sess-0001:train:0");
      expect(req.lossFn).toBe("cross_entropy");
      expect(req.data).toHaveLength(1);
      const d = req.data[0]!;
      expect(d.modelInput.toInts()).toEqual([1, 2, 3]);
      expect(d.lossFnInputs["target_tokens"]!.dtype).toBe("int64");
      expect(d.lossFnInputs["target_tokens"]!.toArray()).toEqual([2, 3, 4]);
      expect(d.lossFnInputs["weights"]!.toArray()).toEqual([1, 1, 1]);
      expect(d.lossFnInputs["weights"]!.shape).toEqual([3]);
    }
    expect(decodeForwardBackwardRequest(fromHex(fwdbwd[0]!.body_hex!)).forwardOnly).toBe(false);
    expect(decodeForwardBackwardRequest(fromHex(fwdbwd[1]!.body_hex!)).forwardOnly).toBe(true);
    expect(decodeForwardBackwardRequest(fromHex(fwdbwd[1]!.body_hex!)).seqId).toBe(4);
  });
});

describe("recorded protobuf responses", () => {
  it("decodes the ForwardBackwardOutput", () => {
    const rec = log.find((r) => r.response.proto_hex && r.response.proto_hex.length > 100)!;
    const out = decodeForwardBackwardOutput(fromHex(rec.response.proto_hex!));
    expect(out.lossFnOutputType).toBe("ArrayRecord");
    expect(out.metrics).toEqual({ "loss:sum": 3 });
    expect(out.lossFnOutputs).toHaveLength(1);
    const o = out.lossFnOutputs[0]!;
    expect(o["logprobs"]!.toArray()).toEqual([-1, -1, -1]);
    expect(o["elementwise_loss"]!.toArray()).toEqual([1, 1, 1]);
    expect(o["logprobs"]!.dtype).toBe("float32");
    // Re-encoding gives the recorded bytes (same record layout, field and metric order).
    expect(hex(encodeForwardBackwardOutput(out))).toBe(rec.response.proto_hex);
  });

  it("decodes the SampleResponse and re-encodes it identically", () => {
    const rec = log.find((r) => r.response.proto_hex && r.response.proto_hex.length < 100)!;
    const res = decodeSampleResponse(fromHex(rec.response.proto_hex!));
    expect(res).toEqual({
      sequences: [
        { stopReason: "length", tokens: [100, 101, 102, 103], logprobs: [-0.5, -0.5, -0.5, -0.5] },
      ],
      promptCacheHitTokens: 0,
    });
    expect(hex(encodeSampleResponse(res))).toBe(rec.response.proto_hex);
  });
});

function roundTripRequest(data: ReturnType<typeof makeDatum>[]) {
  const bytes = encodeForwardBackwardRequest({
    modelId: "m",
    seqId: 7,
    data,
    lossFn: "ppo",
    lossFnConfig: { clip_low_threshold: 0.8, clip_high_threshold: 1.2, zero: 0 },
  });
  return decodeForwardBackwardRequest(bytes);
}

describe("ForwardBackwardRequest round trips", () => {
  it("keeps 2-D dense, sparse CSR, every dtype, config and chunk kinds", () => {
    const sparse = TensorData.fromCsr(
      new Float32Array([0.5, 0.25, 1]),
      [0, 2, 2, 3],
      [0, 3, 1],
      [3, 4],
    );
    const twoD = TensorData.fromTyped(new Int32Array([1, 2, 3, 4, 5, 6, -7, 2147483647]), [2, 4]);
    const input = new ModelInput([
      { type: "encoded_text", tokens: new Int32Array([5, 6]) },
      { type: "image", data: new Uint8Array([1, 2, 3]), format: "png", expectedTokens: 0 },
      { type: "dmel", dmel: new Uint8Array([254, 1, 1, 1]) },
    ]);
    const req = roundTripRequest([
      { modelInput: input, lossFnInputs: { sparse, twoD } },
      makeDatum([9], { advantages: [-1.5], logprobs: [-0.25], target_tokens: [3] }),
      makeDatum([], {}),
    ]);
    expect(req.seqId).toBe(7);
    expect(req.lossFn).toBe("ppo");
    expect(req.lossFnConfig).toEqual({
      clip_low_threshold: 0.8,
      clip_high_threshold: 1.2,
      zero: 0,
    });
    const [d0, d1, d2] = req.data;
    expect(d0!.modelInput.chunks).toEqual(input.chunks);
    const s = d0!.lossFnInputs["sparse"]!;
    expect(s.sparse).toBeDefined();
    expect(s.shape).toEqual([3, 4]);
    expect(s.toArray()).toEqual(sparse.toArray());
    expect(d0!.lossFnInputs["twoD"]!.shape).toEqual([2, 4]);
    expect(d0!.lossFnInputs["twoD"]!.toArray()).toEqual(twoD.toArray());
    expect(d1!.lossFnInputs["advantages"]!.toArray()).toEqual([-1.5]);
    expect(Object.keys(d1!.lossFnInputs)).toEqual(["advantages", "logprobs", "target_tokens"]);
    expect(d2!.modelInput.chunks).toEqual([{ type: "encoded_text", tokens: new Int32Array(0) }]);
  });

  it("returns zero-copy views for aligned float data", () => {
    const w = new Float32Array(1000).map((_, i) => i / 7);
    const bytes = encodeForwardBackwardRequest({
      modelId: "abcd",
      seqId: 1,
      data: [makeDatum([1], { weights: w })],
      lossFn: "cross_entropy",
    });
    const out = decodeForwardBackwardRequest(bytes).data[0]!.lossFnInputs["weights"]!;
    expect(Array.from(out.data)).toEqual(Array.from(w));
    // Either a view over `bytes` (aligned) or an exact copy; both must be correct.
    if (out.data.buffer === bytes.buffer) expect(out.data.byteOffset % 4).toBe(0);
  });

  it("refuses image_asset_pointer chunks and bad seq ids with a field name", () => {
    const datum = {
      modelInput: new ModelInput([
        { type: "image_asset_pointer", format: "png", location: "s3://x", expectedTokens: 4 },
      ]),
      lossFnInputs: {},
    } as const;
    expect(() =>
      encodeForwardBackwardRequest({
        modelId: "m",
        seqId: 1,
        data: [datum],
        lossFn: "cross_entropy",
      }),
    ).toThrow(/image_asset_pointer.*data\[0\]|image_asset_pointer/);
    try {
      encodeForwardBackwardRequest({ modelId: "m", seqId: 1, data: [datum], lossFn: "x" });
    } catch (e) {
      expect(e).toBeInstanceOf(TinkerValidationError);
      expect((e as TinkerValidationError).field).toBe("data[0].model_input[0]");
    }
    expect(() =>
      encodeForwardBackwardRequest({ modelId: "m", seqId: -1, data: [], lossFn: "x" }),
    ).toThrow(TinkerValidationError);
  });

  it("rejects truncated and out-of-range bodies with a typed error", () => {
    const good = encodeForwardBackwardRequest({
      modelId: "m",
      seqId: 1,
      data: [makeDatum([1, 2], { target_tokens: [2, 3] })],
      lossFn: "cross_entropy",
    });
    expect(() => decodeForwardBackwardRequest(good.subarray(0, good.length - 3))).toThrow(
      TinkerValidationError,
    );
    // int64 value 2^40 in a target_tokens tensor does not fit int32 storage.
    const big = new Uint8Array(good);
    const at = hex(big).indexOf("0200000000000000") / 2;
    big[at + 5] = 1;
    expect(() => decodeForwardBackwardRequest(big)).toThrow(/does not fit in int32/);
  });
});

describe("ForwardBackwardOutput round trips", () => {
  it("groups ragged datums, keeps int64 and 2-D outputs, and metrics", () => {
    const out: ForwardBackwardOutput = {
      lossFnOutputType: "ArrayRecord",
      lossFnOutputs: [
        { logprobs: TensorData.fromTyped(new Float32Array([-1, -2])) },
        { logprobs: TensorData.fromTyped(new Float32Array([-3])) },
        { logprobs: TensorData.fromTyped(new Float32Array([-1, -2, -3, -4]), [2, 2]) },
        { ids: TensorData.fromTyped(new Int32Array([-5, 7])) },
        {},
      ],
      metrics: { "loss:sum": 1.5, "n:unique": 0 },
    };
    const back = decodeForwardBackwardOutput(encodeForwardBackwardOutput(out));
    expect(back.lossFnOutputs).toHaveLength(5);
    back.lossFnOutputs.forEach((o, i) => {
      const want = out.lossFnOutputs[i]!;
      expect(Object.keys(o)).toEqual(Object.keys(want));
      for (const k of Object.keys(want)) {
        expect(o[k]!.shape).toEqual(want[k]!.shape);
        expect(o[k]!.dtype).toEqual(want[k]!.dtype);
        expect(o[k]!.toArray()).toEqual(want[k]!.toArray());
      }
    });
    expect(back.metrics).toEqual(out.metrics);
  });

  it("empty outputs decode to ArrayRecord; the type keeps only the part after the last colon", () => {
    const empty = decodeForwardBackwardOutput(new Uint8Array(0));
    expect(empty).toEqual({ lossFnOutputType: "ArrayRecord", lossFnOutputs: [], metrics: {} });
    const named = encodeForwardBackwardOutput({
      lossFnOutputType: "tml.losses:TorchLossReturn",
      lossFnOutputs: [],
      metrics: {},
    });
    expect(decodeForwardBackwardOutput(named).lossFnOutputType).toBe("TorchLossReturn");
  });

  it("widens INT32 and BFLOAT16 batched tensors", () => {
    // ArrayRecord{fields: a (INT32 [1,2,3]), b (BF16 [1.0, -2.0]), offsets per datum}, 1 datum.
    const i32 = Buffer.from(new Int32Array([1, 2, 3]).buffer).toString("hex");
    const bf16 = "803f" + "00c0"; // 1.0 and -2.0 as bfloat16 (upper halves of float32)
    const off = (n: number) =>
      Buffer.from(new BigInt64Array([0n, BigInt(n)]).buffer).toString("hex");
    const bt = (data: string, offsets: string, dtype: number) =>
      `0a${(data.length / 2).toString(16).padStart(2, "0")}${data}12${(offsets.length / 2).toString(16)}${offsets}18${dtype.toString(16).padStart(2, "0")}`;
    const entry = (key: string, body: string) => {
      const k = Buffer.from(key).toString("hex");
      const inner = `0a${(k.length / 2).toString(16).padStart(2, "0")}${k}12${(body.length / 2).toString(16).padStart(2, "0")}${body}`;
      return `12${(inner.length / 2).toString(16).padStart(2, "0")}${inner}`;
    };
    const record = entry("a", bt(i32, off(12), 3)) + entry("b", bt(bf16, off(4), 4)) + "1801";
    const msg = `12${(record.length / 2).toString(16).padStart(2, "0")}${record}`;
    const out = decodeForwardBackwardOutput(fromHex(msg));
    expect(out.lossFnOutputs[0]!["a"]!.dtype).toBe("int64");
    expect(out.lossFnOutputs[0]!["a"]!.toArray()).toEqual([1, 2, 3]);
    expect(out.lossFnOutputs[0]!["b"]!.dtype).toBe("float32");
    expect(out.lossFnOutputs[0]!["b"]!.toArray()).toEqual([1, -2]);
  });

  it("reports malformed responses as APIResponseValidationError with the endpoint", () => {
    const bytes = encodeForwardBackwardOutput({
      lossFnOutputType: "ArrayRecord",
      lossFnOutputs: [{ x: TensorData.fromTyped(new Float32Array([1, 2])) }],
      metrics: {},
    });
    const bad = bytes.subarray(0, bytes.length - 4);
    expect(() => decodeForwardBackwardOutput(bad, "POST /api/v1/retrieve_future")).toThrow(
      APIResponseValidationError,
    );
    expect(() => decodeForwardBackwardOutput(bad, "POST /api/v1/retrieve_future")).toThrow(
      /retrieve_future/,
    );
  });
});

describe("SampleResponse round trips", () => {
  it("NaN prompt logprobs become null; top-k sentinels become null rows or are trimmed", () => {
    const res: SampleResponse = {
      sequences: [
        { stopReason: "stop", tokens: [1, 2], logprobs: [-0.5, -0.25] },
        { stopReason: "length", tokens: [] },
      ],
      promptLogprobs: [null, -1.5, -0.75],
      topkPromptLogprobs: [
        null,
        [
          [5, -0.5],
          [6, -1],
        ],
        [[7, -0.25]],
      ],
      promptCacheHitTokens: 12,
    };
    const back = decodeSampleResponse(encodeSampleResponse(res));
    expect(back).toEqual(res);
  });
});

describe("SamplingParams protobuf", () => {
  it("round-trips every field and both stop forms; unset fields stay unset", () => {
    const full = {
      maxTokens: 64,
      seed: 2 ** 40 + 3,
      temperature: 0.5,
      topK: -1,
      topP: 0.25,
      stop: ["\n\n", "Q:"],
    };
    expect(decodeSamplingParams(encodeSamplingParams(full))).toEqual(full);
    const tokens = { maxTokens: 0, stop: [151645, 7] };
    expect(decodeSamplingParams(encodeSamplingParams(tokens))).toEqual(tokens);
    expect(decodeSamplingParams(encodeSamplingParams({ stop: "END" }))).toEqual({ stop: ["END"] });
    expect(decodeSamplingParams(encodeSamplingParams({}))).toEqual({});
    // Explicit presence: max_tokens 0 is still written (field 1, value 0).
    expect(hex(encodeSamplingParams({ maxTokens: 0 }))).toBe("0800");
    expect(hex(encodeSamplingParams({ temperature: 1 }))).toBe("1d0000803f");
  });
});

describe("decoding from Node Buffers", () => {
  it("decodes tensors correctly from an unaligned slice of a pooled Buffer", () => {
    const res: SampleResponse = {
      sequences: [{ stopReason: "length", tokens: [5, 6, 7], logprobs: [-0.5, -1.25, -2] }],
      promptLogprobs: [null, -3.5],
      promptCacheHitTokens: 0,
    };
    const encoded = encodeSampleResponse(res);
    // A small Buffer comes from Node's shared pool; offset by one byte to force the unaligned path.
    const pooled = Buffer.alloc(encoded.length + 1);
    pooled.set(encoded, 1);
    const view = pooled.subarray(1);
    expect(view.byteOffset % 4).not.toBe(0);
    expect(decodeSampleResponse(view)).toEqual(res);
  });
});

import { describe, expect, it } from "vitest";
import { APIResponseValidationError, TinkerValidationError } from "../../src/client/errors.js";
import type { Datum } from "../../src/client/types/datum.js";
import { ModelInput } from "../../src/client/types/model-input.js";
import type { ForwardBackwardOutput, SampleResponse } from "../../src/client/types/outputs.js";
import { TensorData } from "../../src/client/types/tensor-data.js";
import {
  decodeForwardBackwardOutput,
  decodeForwardBackwardRequest,
  decodeSampleResponse,
  encodeForwardBackwardOutput,
  encodeForwardBackwardRequest,
  encodeSampleResponse,
} from "../../src/client/wire/proto.js";

/** Deterministic generator (LCG) so failures reproduce. */
function rng(seed: number) {
  let x = seed >>> 0;
  const next = () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]!,
  };
}
type Rng = ReturnType<typeof rng>;

function randomTensor(r: Rng, lead: number): TensorData {
  const dtype = r.pick(["int64", "float32"] as const);
  const twoD = r.next() < 0.4;
  const cols = twoD ? r.int(1, 5) : 1;
  const shape = twoD ? [lead, cols] : [lead];
  const n = lead * cols;
  const values =
    dtype === "float32"
      ? Float32Array.from({ length: n }, () => Math.fround((r.next() - 0.5) * 1e3))
      : Int32Array.from({ length: n }, () => r.int(-2147483648, 2147483647));
  if (twoD && r.next() < 0.5) {
    // CSR version of a random sparse matrix.
    const crow = [0];
    const col: number[] = [];
    const vals: number[] = [];
    for (let i = 0; i < lead; i++) {
      for (let j = 0; j < cols; j++) {
        if (r.next() < 0.3) {
          col.push(j);
          vals.push(values[i * cols + j]!);
        }
      }
      crow.push(col.length);
    }
    const v = dtype === "float32" ? Float32Array.from(vals) : Int32Array.from(vals);
    return TensorData.fromCsr(v, crow, col, [lead, cols]);
  }
  return TensorData.fromTyped(values, shape);
}

function randomDatum(r: Rng): Datum {
  const chunks: ModelInput["chunks"][number][] = [];
  const nChunks = r.int(0, 3);
  for (let i = 0; i < nChunks; i++) {
    const kind = r.pick(["encoded_text", "encoded_text", "image", "dmel"] as const);
    if (kind === "encoded_text") {
      chunks.push({
        type: kind,
        tokens: Int32Array.from({ length: r.int(0, 40) }, () => r.int(0, 200000)),
      });
    } else if (kind === "image") {
      const data = Uint8Array.from({ length: r.int(0, 30) }, () => r.int(0, 255));
      chunks.push(
        r.next() < 0.5
          ? { type: "image", data, format: "jpeg" }
          : { type: "image", data, format: "png", expectedTokens: r.int(0, 1000) },
      );
    } else {
      chunks.push({
        type: "dmel",
        dmel: Uint8Array.from({ length: r.int(0, 20) }, () => r.int(0, 255)),
      });
    }
  }
  const lead = r.int(0, 30);
  const inputs: Record<string, TensorData> = {};
  for (const key of ["target_tokens", "weights", "advantages", "logprobs", "mask"]) {
    if (r.next() < 0.6) inputs[key] = randomTensor(r, lead);
  }
  return { modelInput: new ModelInput(chunks), lossFnInputs: inputs };
}

function expectSameTensor(a: TensorData, b: TensorData) {
  expect(a.dtype).toBe(b.dtype);
  expect(a.shape).toEqual(b.shape);
  expect(a.sparse === undefined).toBe(b.sparse === undefined);
  expect(Array.from(a.toDense())).toEqual(Array.from(b.toDense()));
}

describe("protobuf round trips on random inputs (seeded)", () => {
  it("ForwardBackwardRequest", () => {
    const r = rng(42);
    for (let iter = 0; iter < 150; iter++) {
      const data = Array.from({ length: r.int(0, 4) }, () => randomDatum(r));
      const config = r.next() < 0.5 ? { beta: r.next(), clip_low_threshold: -r.next() } : undefined;
      const req = {
        modelId: `m-${iter}:train:0`,
        seqId: r.int(0, 1 << 30),
        data,
        lossFn: r.pick(["cross_entropy", "ppo", "dro"]),
        lossFnConfig: config,
        forwardOnly: r.next() < 0.5,
      };
      const back = decodeForwardBackwardRequest(encodeForwardBackwardRequest(req));
      expect(back.modelId).toBe(req.modelId);
      expect(back.seqId).toBe(req.seqId);
      expect(back.lossFn).toBe(req.lossFn);
      expect(back.forwardOnly).toBe(req.forwardOnly);
      expect(back.lossFnConfig).toEqual(config ?? {});
      expect(back.data).toHaveLength(data.length);
      back.data.forEach((d, i) => {
        const want = data[i]!;
        expect(d.modelInput.chunks).toEqual(want.modelInput.chunks);
        expect(Object.keys(d.lossFnInputs)).toEqual(Object.keys(want.lossFnInputs));
        for (const k of Object.keys(want.lossFnInputs)) {
          expectSameTensor(d.lossFnInputs[k]!, want.lossFnInputs[k]!);
        }
      });
    }
  });

  it("ForwardBackwardOutput (ragged lengths, mixed dtypes, 2-D)", () => {
    const r = rng(7);
    for (let iter = 0; iter < 100; iter++) {
      const out: ForwardBackwardOutput = {
        lossFnOutputType: "ArrayRecord",
        lossFnOutputs: Array.from({ length: r.int(0, 6) }, () => {
          const rec: Record<string, TensorData> = {};
          if (r.next() < 0.9) rec["logprobs"] = randomTensor(r, r.int(0, 9)).densify();
          if (r.next() < 0.3) rec["elementwise_loss"] = randomTensor(r, r.int(0, 9)).densify();
          return rec;
        }),
        metrics: { "loss:sum": r.next(), "n:sum": r.int(0, 10) },
      };
      const back = decodeForwardBackwardOutput(encodeForwardBackwardOutput(out));
      expect(back.metrics).toEqual(out.metrics);
      expect(back.lossFnOutputs).toHaveLength(out.lossFnOutputs.length);
      back.lossFnOutputs.forEach((rec, i) => {
        const want = out.lossFnOutputs[i]!;
        expect(Object.keys(rec)).toEqual(Object.keys(want));
        for (const k of Object.keys(want)) expectSameTensor(rec[k]!, want[k]!);
      });
    }
  });

  it("SampleResponse", () => {
    const r = rng(99);
    for (let iter = 0; iter < 100; iter++) {
      const promptLen = r.int(0, 8);
      const res: SampleResponse = {
        sequences: Array.from({ length: r.int(0, 3) }, () => {
          const n = r.int(0, 6);
          const s = {
            stopReason: r.pick(["stop", "length"] as const),
            tokens: Array.from({ length: n }, () => r.int(0, 150000)),
          };
          return r.next() < 0.7
            ? { ...s, logprobs: Array.from({ length: n }, () => Math.fround(-r.next() * 5)) }
            : s;
        }),
        promptCacheHitTokens: r.int(0, 100),
      };
      if (r.next() < 0.6) {
        res.promptLogprobs = Array.from({ length: promptLen }, (_, i) =>
          i === 0 || r.next() < 0.2 ? null : Math.fround(-r.next() * 3),
        );
      }
      if (r.next() < 0.6) {
        res.topkPromptLogprobs = Array.from({ length: promptLen }, () =>
          r.next() < 0.3
            ? null
            : Array.from({ length: r.int(1, 3) }, (): [number, number] => [
                r.int(1, 1000),
                Math.fround(-r.next()),
              ]),
        );
      }
      expect(decodeSampleResponse(encodeSampleResponse(res))).toEqual(res);
    }
  });
});

describe("corrupted protobuf never escapes as an untyped error", () => {
  it("mutated request bodies decode or throw TinkerValidationError", () => {
    const r = rng(1234);
    const good = encodeForwardBackwardRequest({
      modelId: "m",
      seqId: 3,
      data: [randomDatum(rng(5)), randomDatum(rng(6))],
      lossFn: "cross_entropy",
      lossFnConfig: { beta: 0.1 },
    });
    for (let iter = 0; iter < 500; iter++) {
      const bad = good.slice(0, r.int(0, good.length));
      for (let k = r.int(0, 4); k > 0; k--)
        if (bad.length) bad[r.int(0, bad.length - 1)] = r.int(0, 255);
      try {
        decodeForwardBackwardRequest(bad);
      } catch (e) {
        expect(e).toBeInstanceOf(TinkerValidationError);
      }
    }
  });

  it("mutated responses decode or throw APIResponseValidationError", () => {
    const r = rng(4321);
    const out = encodeForwardBackwardOutput({
      lossFnOutputType: "ArrayRecord",
      lossFnOutputs: [
        { logprobs: TensorData.fromTyped(new Float32Array([-1, -2, -3])) },
        { logprobs: TensorData.fromTyped(new Float32Array([-4])) },
      ],
      metrics: { "loss:sum": 3 },
    });
    const sample = encodeSampleResponse({
      sequences: [{ stopReason: "stop", tokens: [1, 2], logprobs: [-1, -2] }],
      promptLogprobs: [null, -1],
      topkPromptLogprobs: [null, [[1, -1]]],
      promptCacheHitTokens: 1,
    });
    for (let iter = 0; iter < 500; iter++) {
      for (const [good, decode] of [
        [out, decodeForwardBackwardOutput],
        [sample, decodeSampleResponse],
      ] as const) {
        const bad = good.slice(0, r.int(0, good.length));
        for (let k = r.int(0, 4); k > 0; k--)
          if (bad.length) bad[r.int(0, bad.length - 1)] = r.int(0, 255);
        try {
          decode(bad);
        } catch (e) {
          expect(e).toBeInstanceOf(APIResponseValidationError);
        }
      }
    }
  });

  it("skips unknown fields (newer servers may add some)", () => {
    const base = encodeSampleResponse({
      sequences: [{ stopReason: "length", tokens: [7] }],
      promptCacheHitTokens: 0,
    });
    // field 15, varint 1; field 16, length-delimited "hi"
    const extra = new Uint8Array([...base, 0x78, 0x01, 0x82, 0x01, 0x02, 0x68, 0x69]);
    expect(decodeSampleResponse(extra).sequences).toEqual([{ stopReason: "length", tokens: [7] }]);
  });
});

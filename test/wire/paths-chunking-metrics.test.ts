import { describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { makeDatum } from "../../src/client/types/datum.js";
import { ModelInput } from "../../src/client/types/model-input.js";
import { TensorData } from "../../src/client/types/tensor-data.js";
import {
  chunkDatums,
  chunkDatumsWithSizes,
  estimateDatumBytes,
  estimateDatumBytesLegacy,
} from "../../src/client/wire/chunking.js";
import {
  combineForwardBackwardOutputs,
  mergeChunkMetrics,
  pythonTupleHash,
} from "../../src/client/wire/metrics.js";
import {
  apiPaths,
  formatTinkerPath,
  parseTinkerPath,
  queryString,
} from "../../src/client/wire/paths.js";
import { encodeForwardBackwardRequest } from "../../src/client/wire/proto.js";

describe("tinker:// paths", () => {
  it("parses both kinds and formats them back", () => {
    const p = parseTinkerPath("tinker://4fbd-5454:train:0/weights/0001");
    expect(p).toEqual({
      trainingRunId: "4fbd-5454:train:0",
      checkpointType: "training",
      checkpointId: "weights/0001",
      name: "0001",
    });
    const s = parseTinkerPath("tinker://sess-0001:train:0/sampler_weights/step-1");
    expect(s.checkpointType).toBe("sampler");
    expect(s.checkpointId).toBe("sampler_weights/step-1");
    expect(formatTinkerPath(s)).toBe("tinker://sess-0001:train:0/sampler_weights/step-1");
    expect(formatTinkerPath(p)).toBe("tinker://4fbd-5454:train:0/weights/0001");
  });

  it.each([
    ["https://run/weights/a", /scheme "https:\/\/" is not tinker:\/\//],
    ["run/weights/a", /missing tinker:\/\/ scheme/],
    ["tinker://run/weights", /has 2 .* needs exactly 3/],
    ["tinker://run/weights/a/b", /has 4 .* needs exactly 3/],
    ["tinker://run/checkpoints/a", /unknown checkpoint kind "checkpoints"/],
    ["tinker://run/weights/", /checkpoint name is empty/],
    ["tinker:///weights/a", /training run id is empty/],
  ])("%s is rejected with a reason and the valid form", (path, why) => {
    try {
      parseTinkerPath(path);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(TinkerValidationError);
      expect((e as Error).message).toMatch(why);
      expect((e as Error).message).toContain("tinker://<training_run_id>/weights/<name>");
      expect((e as TinkerValidationError).field).toBe("path");
    }
  });

  it("refuses to format names with a slash", () => {
    expect(() =>
      formatTinkerPath({ trainingRunId: "r", checkpointType: "training", name: "a/b" }),
    ).toThrow(TinkerValidationError);
  });

  it("REST paths keep ids raw; query strings drop nulls and comma-join arrays", () => {
    const p = parseTinkerPath("tinker://r:train:0/weights/0001");
    expect(apiPaths.checkpoint(p.trainingRunId, p.checkpointId)).toBe(
      "/api/v1/training_runs/r:train:0/checkpoints/weights/0001",
    );
    expect(
      queryString({ limit: 20, offset: 0, access_scope: "owned", project_id: undefined }),
    ).toBe("?limit=20&offset=0&access_scope=owned");
    expect(queryString({ ids: ["a", "b"] })).toBe("?ids=a%2Cb");
    expect(queryString({})).toBe("");
  });
});

describe("chunking", () => {
  const datum = (n: number) =>
    makeDatum(
      Array.from({ length: n }, (_, i) => i),
      {
        target_tokens: Array.from({ length: n }, (_, i) => i + 1),
        weights: new Float32Array(n).fill(1),
      },
    );

  it("estimates the 0.25.0 way: tokens x 4, raw tensor bytes, 8 per sparse index", () => {
    expect(estimateDatumBytes(datum(10))).toBe(10 * 4 + 10 * 8 + 10 * 4);
    const sparse = TensorData.fromCsr(new Float32Array([1, 2]), [0, 1, 2], [0, 3], [2, 4]);
    const d = { modelInput: ModelInput.fromInts([1, 2]), lossFnInputs: { weights: sparse } };
    expect(estimateDatumBytes(d)).toBe(2 * 4 + 2 * 4 + 8 * (3 + 2));
    expect(estimateDatumBytesLegacy(datum(10))).toBe(10 * 10 + 10 * 10 + 10 * 10);
    const img = new ModelInput([{ type: "image", data: new Uint8Array(100), format: "png" }]);
    expect(estimateDatumBytes({ modelInput: img, lossFnInputs: {} })).toBe(100);
  });

  it("the estimate tracks the real protobuf size", () => {
    const data = Array.from({ length: 8 }, () => datum(512));
    const est = data.reduce((a, d) => a + estimateDatumBytes(d), 0);
    const real = encodeForwardBackwardRequest({
      modelId: "m",
      seqId: 1,
      data,
      lossFn: "cross_entropy",
    }).length;
    expect(real / est).toBeGreaterThan(0.95);
    expect(real / est).toBeLessThan(1.1);
  });

  it("splits by count and by bytes, in order; an oversize datum goes alone", () => {
    const data = Array.from({ length: 10 }, () => datum(1));
    expect(chunkDatums(data, { maxChunkLen: 4 }).map((c) => c.length)).toEqual([4, 4, 2]);
    const sizes = [datum(10), datum(10), datum(1000), datum(10)];
    const per = estimateDatumBytes(datum(10));
    const chunks = chunkDatumsWithSizes(sizes, { maxChunkBytes: per * 2 });
    expect(chunks.map((c) => c.data.length)).toEqual([2, 1, 1]);
    expect(chunks[1]!.data[0]).toBe(sizes[2]);
    expect(chunks[0]!.estimatedBytes).toBe(per * 2);
    expect(chunkDatums([], {})).toEqual([]);
    // Defaults: 1024 datums.
    expect(chunkDatums(Array.from({ length: 2049 }, () => datum(1))).map((c) => c.length)).toEqual([
      1024, 1024, 1,
    ]);
  });
});

describe("metric merging", () => {
  it.each([
    ["loss:sum", [1, 2, 3], [1, 1, 1], { "loss:sum": 6 }],
    ["acc:mean", [1, 0], [3, 1], { "acc:mean": 0.75 }],
    ["acc:mean", [1, 0], [0, 0], { "acc:mean": 0.5 }],
    ["lr:min", [3, -1, 2], [1, 1, 1], { "lr:min": -1 }],
    ["lr:max", [3, -1, 2], [1, 1, 1], { "lr:max": 3 }],
    ["t:slack", [4, 2], [1, 3], { "t:slack": 4 - 2.5 }],
    [
      "step:unique",
      [7, 8, 9],
      [1, 1, 1],
      { "step:unique": 7, "step:unique_1": 8, "step:unique_2": 9 },
    ],
    ["x:median", [1, 2], [1, 1], {}],
    ["nocolon", [1, 2], [1, 1], {}],
    ["a:b:sum", [1, 2], [1, 1], {}],
  ] as const)("%s over %j weighted %j", (key, values, counts, want) => {
    const chunks = values.map((v) => ({ [key]: v }));
    expect(mergeChunkMetrics(chunks, [...counts])).toEqual(want);
  });

  it("drops keys missing from any chunk and keeps the first chunk's key order", () => {
    const merged = mergeChunkMetrics(
      [
        { "b:sum": 1, "a:sum": 2, "only:sum": 3 },
        { "a:sum": 4, "b:sum": 5 },
      ],
      [1, 1],
    );
    expect(merged).toEqual({ "b:sum": 6, "a:sum": 6 });
    expect(Object.keys(merged)).toEqual(["b:sum", "a:sum"]);
    expect(mergeChunkMetrics([], [])).toEqual({});
  });

  it("hash_unordered reproduces CPython's hash of the sorted int tuple", () => {
    // Values computed with CPython 3.11: hash(tuple(sorted(int(x) for x in xs))).
    expect(pythonTupleHash([1n, 2n, 3n])).toBe(529344067295497451n);
    expect(pythonTupleHash([])).toBe(5740354900026072187n);
    expect(pythonTupleHash([-1n])).toBe(8078679518589016365n);
    const big = [1e18, -5.7, 2 ** 61, -1, 0].map((x) => BigInt(Math.trunc(x)));
    big.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(pythonTupleHash(big)).toBe(-3593668384645437193n);
    const m = mergeChunkMetrics(
      [{ "h:hash_unordered": 3 }, { "h:hash_unordered": 1 }, { "h:hash_unordered": 2 }],
      [1, 1, 1],
    );
    expect(m["h:hash_unordered"]).toBe(5.293440672954975e17);
    const m2 = mergeChunkMetrics(
      [{ "h:hash_unordered": 1.2345678901234568e16 }, { "h:hash_unordered": 98765.4 }],
      [1, 1],
    );
    expect(m2["h:hash_unordered"]).toBe(-7.221710989218103e18);
  });

  it("combines chunk outputs: concatenation plus merged metrics", () => {
    const lp = (x: number) => ({ logprobs: TensorData.fromTyped(new Float32Array([x])) });
    const out = combineForwardBackwardOutputs([
      {
        lossFnOutputType: "ArrayRecord",
        lossFnOutputs: [lp(1), lp(2)],
        metrics: { "loss:sum": 1, "a:mean": 1 },
      },
      {
        lossFnOutputType: "ArrayRecord",
        lossFnOutputs: [lp(3)],
        metrics: { "loss:sum": 2, "a:mean": 4 },
      },
    ]);
    expect(out.lossFnOutputs.map((o) => o["logprobs"]!.data[0])).toEqual([1, 2, 3]);
    expect(out.metrics).toEqual({ "loss:sum": 3, "a:mean": 2 });
    expect(combineForwardBackwardOutputs([])).toEqual({
      lossFnOutputType: "",
      lossFnOutputs: [],
      metrics: {},
    });
  });
});

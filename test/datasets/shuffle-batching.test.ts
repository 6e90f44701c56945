import { describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { numBatches, ShuffledBatches } from "../../src/datasets/batching.js";
import { deriveSeed, Prng, permutation, seededShuffle } from "../../src/datasets/prng.js";

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("Prng", () => {
  it("is pinned: a change of generator or seeding is caught", () => {
    const r = new Prng(0);
    expect([r.nextUint32(), r.nextUint32(), r.nextUint32()]).toEqual([
      1789933344, 44971166, 2521387044,
    ]);
    expect(permutation(10, 42)).toEqual([3, 7, 4, 8, 2, 0, 9, 6, 5, 1]);
    expect(permutation(10, 0)).toEqual([6, 3, 5, 8, 0, 7, 1, 9, 2, 4]);
    // deriveSeed orders every epoch's shuffle: pinned too, including seeds above 2^32.
    expect([deriveSeed(0, 1), deriveSeed(7, 2 ** 40, 3), deriveSeed(2 ** 40 + 9)]).toEqual([
      1871649650, 1477962388, 2980315914,
    ]);
  });

  it("same seed, same stream; different seeds, different streams", () => {
    const a = new Prng(123);
    const b = new Prng(123);
    const c = new Prng(124);
    const sa = range(50).map(() => a.nextUint32());
    expect(range(50).map(() => b.nextUint32())).toEqual(sa);
    expect(range(50).map(() => c.nextUint32())).not.toEqual(sa);
    // Seeds above 2^32 are distinct from their low 32 bits.
    expect(permutation(20, 2 ** 32 + 5)).not.toEqual(permutation(20, 5));
  });

  it("nextInt is unbiased enough: chi-square on 6 buckets", () => {
    const r = new Prng(9);
    const counts = new Array(6).fill(0) as number[];
    const n = 60_000;
    for (let i = 0; i < n; i++) counts[r.nextInt(6)]!++;
    const exp = n / 6;
    const chi2 = counts.reduce((s, c) => s + (c - exp) ** 2 / exp, 0);
    expect(chi2).toBeLessThan(20.5); // p = 0.001 at 5 degrees of freedom
    const f = r.nextFloat();
    expect(f).toBeGreaterThanOrEqual(0);
    expect(f).toBeLessThan(1);
  });

  it("permutations are permutations and uniform over positions", () => {
    const p = permutation(1000, 3);
    expect([...p].sort((x, y) => x - y)).toEqual(range(1000));
    // Element 0 lands in each of 4 position quarters about equally often.
    const quarters = [0, 0, 0, 0];
    for (let s = 0; s < 4000; s++) quarters[Math.floor(permutation(8, s).indexOf(0) / 2)]!++;
    for (const q of quarters) expect(Math.abs(q - 1000)).toBeLessThan(150);
    expect(seededShuffle(["a", "b", "c"], 1).sort()).toEqual(["a", "b", "c"]);
  });

  it("rejects bad seeds and bounds with a validation error", () => {
    expect(() => new Prng(-1)).toThrow(TinkerValidationError);
    expect(() => new Prng(1.5)).toThrow(/seed/);
    expect(() => new Prng(0).nextInt(0)).toThrow(/bound/);
    expect(deriveSeed(1, 2)).not.toBe(deriveSeed(2, 1));
  });
});

describe("ShuffledBatches", () => {
  it("drops the last partial batch by default (n // batchSize), keeps it on request", () => {
    expect(numBatches(10, 3)).toBe(3);
    expect(numBatches(10, 3, false)).toBe(4);
    expect(numBatches(7473, 128)).toBe(58);
    expect(numBatches(7473, 128, false)).toBe(59);
    const kept = new ShuffledBatches(range(10), { batchSize: 3, dropLast: false });
    expect(kept.getBatch(3)).toHaveLength(1);
    expect(() => new ShuffledBatches(range(10), { batchSize: 3 }).getBatch(3)).toThrow(
      /out of range: this dataset has 3 batches/,
    );
    expect(() => new ShuffledBatches(range(10), { batchSize: 0 })).toThrow(/batchSize/);
  });

  it("is pinned for seed 7", () => {
    const b = new ShuffledBatches(range(10), { batchSize: 3, seed: 7 });
    expect([b.getBatch(0), b.getBatch(1), b.getBatch(2)]).toEqual([
      [3, 0, 5],
      [6, 7, 9],
      [4, 2, 1],
    ]);
    b.setEpoch(1);
    expect(b.getBatch(0)).toEqual([3, 6, 5]);
  });

  it("same seed gives the same batches, different seeds and epochs give different orders", () => {
    const items = range(100);
    const all = (seed: number, epoch = 0) => {
      const b = new ShuffledBatches(items, { batchSize: 10, seed });
      b.setEpoch(epoch);
      return range(b.length).map((i) => b.getBatch(i));
    };
    expect(all(5)).toEqual(all(5));
    expect(all(5)).not.toEqual(all(6));
    expect(all(5, 1)).not.toEqual(all(5, 0));
    // every epoch covers every item exactly once
    expect(
      all(5, 3)
        .flat()
        .sort((a, b) => a - b),
    ).toEqual(items);
  });

  it("epochs() walks every epoch in order with global step numbers, and resumes identically", () => {
    const b = new ShuffledBatches(range(10), { batchSize: 4, seed: 1 });
    const seen = [...b.epochs(3)];
    expect(seen.map((s) => s.step)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(seen.map((s) => s.epoch)).toEqual([0, 0, 1, 1, 2, 2]);
    const resumed = [...new ShuffledBatches(range(10), { batchSize: 4, seed: 1 }).epochs(1, 2)];
    expect(resumed.map((s) => s.items)).toEqual(seen.slice(4).map((s) => s.items));
  });

  it("shuffle: false keeps the input order", () => {
    const b = new ShuffledBatches(range(6), { batchSize: 2, shuffle: false });
    b.setEpoch(4);
    expect(b.getBatch(2)).toEqual([4, 5]);
  });
});

import { TinkerValidationError } from "../client/errors.js";

/**
 * A small seeded PRNG (xoshiro128**, seeded through splitmix32). It uses only 32-bit integer
 * arithmetic, so a seed gives the same stream on every machine and Node version.
 */
export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** @param seed a non-negative safe integer. */
  constructor(seed: number) {
    checkSeed(seed);
    const next = splitmix32(fold53(seed, 0x9e3779b1));
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A uniform integer in [0, 2^32). */
  nextUint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform float in [0, 1) with 32 random bits. */
  nextFloat(): number {
    return this.nextUint32() / 2 ** 32;
  }

  /** A uniform integer in [0, bound), without modulo bias. `bound` must be in [1, 2^32]. */
  nextInt(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > 2 ** 32) {
      throw new TinkerValidationError(
        `nextInt bound must be an integer in [1, 2^32], got ${bound}`,
        "bound",
      );
    }
    const limit = 2 ** 32 - (2 ** 32 % bound);
    for (;;) {
      const r = this.nextUint32();
      if (r < limit) return r % bound;
    }
  }

  /** A uniform integer in [lo, hi] (inclusive). */
  intBetween(lo: number, hi: number): number {
    return lo + this.nextInt(hi - lo + 1);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function splitmix32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x9e3779b9) | 0;
    let t = a ^ (a >>> 16);
    t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15;
    t = Math.imul(t, 0x735a2d97);
    return (t ^ (t >>> 15)) >>> 0;
  };
}

/** A 32-bit word mixing both halves of a safe integer (its high bits scaled by `mul`). */
function fold53(n: number, mul: number): number {
  return (n >>> 0) ^ Math.imul(Math.floor(n / 2 ** 32), mul);
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new TinkerValidationError(
      `seed must be a non-negative safe integer, got ${seed}`,
      "seed",
    );
  }
}

/** A seed derived from `seed` and `parts` (e.g. an epoch or batch index), stable across machines. */
export function deriveSeed(seed: number, ...parts: number[]): number {
  checkSeed(seed);
  let h = splitmix32(fold53(seed, 0x9e3779b1))();
  for (const p of parts) {
    checkSeed(p);
    const hp = splitmix32(fold53(p, 0x85ebca6b))();
    h = splitmix32(Math.imul(h, 0x9e3779b1) ^ hp)(); // asymmetric: (1, 2) != (2, 1)
  }
  return h;
}

/** A uniformly random permutation of `0..n-1` (Fisher-Yates) for `seed`. */
export function permutation(n: number, seed: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  const rng = new Prng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const tmp = order[i]!;
    order[i] = order[j]!;
    order[j] = tmp;
  }
  return order;
}

/** A shuffled copy of `items` for `seed`. */
export function seededShuffle<T>(items: readonly T[], seed: number): T[] {
  return permutation(items.length, seed).map((i) => items[i]!);
}

/**
 * A small seeded PRNG (xoshiro128**, seeded through splitmix32) with identical output on every
 * machine. Used for weight init, LoRA init and sampling; `Math.random` is never used for results.
 */
export class SeededRng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /**
   * `seed` may be any safe integer (or a non-negative number up to 2^64, folded); `stream` selects
   * an independent sequence for the same seed (e.g. one per sample).
   */
  constructor(seed: number, stream = 0) {
    const lo = seedLow(seed);
    const hi = seedHigh(seed);
    let x = (lo ^ Math.imul(hi, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca6b)) >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next() ^ hi;
    this.s2 = next() ^ stream;
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform float in [0, 1) with 53 bits of randomness. */
  nextFloat(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** A uniform float in [0, 1) with 24 bits of randomness (one draw; enough for weight init). */
  nextFloat24(): number {
    return (this.nextUint32() >>> 8) / 16777216;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.nextFloat();
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    let u = this.nextFloat();
    while (u === 0) u = this.nextFloat();
    const v = this.nextFloat();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function seedLow(seed: number): number {
  const s = Math.abs(Math.trunc(seed));
  return (s % 4294967296) >>> 0;
}

function seedHigh(seed: number): number {
  const s = Math.abs(Math.trunc(seed));
  return (Math.floor(s / 4294967296) % 4294967296) >>> 0;
}

/** A fresh random seed for requests that do not give one. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32) + Math.floor(Math.random() * 2 ** 20) * 2 ** 32;
}

import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  bf16ToF32,
  decodeSafetensors,
  encodeSafetensors,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  ModelFileError,
  readSafetensors,
  readSafetensorsFolder,
  readSafetensorsHeader,
  readShardedSafetensors,
  writeSafetensors,
} from "../../src/local/engine/io/index.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tinker-st-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A safetensors file assembled byte by byte: u64 LE header length, JSON header, raw data. */
function handMade(header: object, data: number[], pad = ""): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header) + pad);
  const out = new Uint8Array(8 + json.length + data.length);
  out[0] = json.length & 0xff;
  out[1] = (json.length >> 8) & 0xff;
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const MIXED_HEADER = {
  __metadata__: { format: "pt" },
  a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
  b: { dtype: "BF16", shape: [3], data_offsets: [8, 14] },
  c: { dtype: "F16", shape: [5], data_offsets: [14, 24] },
};
// a = [1.5, -2] (0x3FC00000, 0xC0000000); b = bf16 [0x3F80, 0xC040, 0x3EAB];
// c = f16 [0x3C00, 0x0001, 0x7BFF, 0xFC00, 0x3555]
const MIXED_DATA = [
  0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0x80, 0x3f, 0x40, 0xc0, 0xab, 0x3e, 0x00, 0x3c,
  0x01, 0x00, 0xff, 0x7b, 0x00, 0xfc, 0x55, 0x35,
];

describe("safetensors reading", () => {
  it("widens bf16 and f16 to the hand-computed float32 values", async () => {
    const p = join(dir, "m.safetensors");
    await writeFile(p, handMade(MIXED_HEADER, MIXED_DATA, "   "));
    const t = await readSafetensors(p);
    expect([...t.keys()].sort()).toEqual(["a", "b", "c"]);
    expect(t.get("a")).toEqual({ dtype: "F32", shape: [2], data: new Float32Array([1.5, -2]) });
    expect(t.get("b")?.dtype).toBe("BF16");
    expect([...(t.get("b")?.data ?? [])]).toEqual([1, -3, 0.333984375]);
    expect([...(t.get("c")?.data ?? [])]).toEqual([1, 2 ** -24, 65504, -Infinity, 0.333251953125]);
    const h = await readSafetensorsHeader(p);
    expect(h.metadata).toEqual({ format: "pt" });
    expect(h.tensors.get("c")?.dataOffsets).toEqual([14, 24]);
  });

  it("reads 16-bit tensors in bounded chunks with the same result", async () => {
    const p = join(dir, "m.safetensors");
    await writeFile(p, handMade(MIXED_HEADER, MIXED_DATA));
    const whole = await readSafetensors(p);
    for (const chunkBytes of [2, 3, 4, 6]) {
      const chunked = await readSafetensors(p, { chunkBytes });
      for (const [k, t] of whole)
        expect(chunked.get(k)?.data, `${k} @${chunkBytes}`).toEqual(t.data);
    }
  });

  it("decodes from memory, also at an odd byte offset, and honours a filter", () => {
    const bytes = handMade(MIXED_HEADER, MIXED_DATA);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const { tensors, metadata } = decodeSafetensors(shifted.subarray(1), {
      filter: (n) => n !== "a",
    });
    expect(metadata.format).toBe("pt");
    expect([...tensors.keys()].sort()).toEqual(["b", "c"]);
    expect(tensors.get("c")?.data[2]).toBe(65504);
  });

  it("rejects malformed headers with errors naming the file and tensor", async () => {
    const cases: [object, number[], RegExp][] = [
      [
        { x: { dtype: "F32", shape: [3], data_offsets: [0, 8] } },
        new Array(8).fill(0),
        /tensor "x".*8 bytes but F32 \[3\] needs 12/,
      ],
      [
        { x: { dtype: "F32", shape: [4], data_offsets: [0, 16] } },
        new Array(8).fill(0),
        /tensor "x".*past the end.*truncated/,
      ],
      [
        { x: { dtype: "Q4", shape: [1], data_offsets: [0, 1] } },
        [0],
        /tensor "x": unknown dtype "Q4"/,
      ],
      [
        {
          x: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
          y: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
        },
        new Array(8).fill(0),
        /overlaps/,
      ],
      [
        { x: { dtype: "F32", shape: [1], data_offsets: [4, 8] } },
        new Array(8).fill(0),
        /unreferenced bytes 0\.\.4 before tensor "x"/,
      ],
      [
        { x: { dtype: "F32", shape: [1], data_offsets: [0, 4] } },
        new Array(8).fill(0),
        /cover only 4/,
      ],
      [{ x: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, [0, 0, 0, 0], /shape must be/],
      [{ __metadata__: { n: 3 } }, [], /__metadata__\.n must be a string/],
    ];
    for (const [i, [header, data, re]] of cases.entries()) {
      const p = join(dir, `bad${i}.safetensors`);
      await writeFile(p, handMade(header, data));
      const err = await readSafetensors(p).catch((e: unknown) => e);
      expect(err, `case ${i}`).toBeInstanceOf(ModelFileError);
      expect((err as Error).message, `case ${i}`).toMatch(re);
      expect((err as Error).message).toContain(p);
    }
  });

  it("rejects non-safetensors files, truncated prefixes, missing files and non-float dtypes", async () => {
    const p = join(dir, "junk.safetensors");
    await writeFile(p, new TextEncoder().encode("this is not a safetensors file at all"));
    await expect(readSafetensors(p)).rejects.toThrow(/header length .* exceeds the file size/);
    await writeFile(p, new Uint8Array([1, 2, 3]));
    await expect(readSafetensors(p)).rejects.toThrow(/only 3 bytes/);
    const badJson = new Uint8Array(8 + 3);
    badJson[0] = 3;
    badJson.set(new TextEncoder().encode("{x:"), 8);
    await writeFile(p, badJson);
    await expect(readSafetensors(p)).rejects.toThrow(/not valid UTF-8 JSON/);
    await expect(readSafetensors(join(dir, "nope.safetensors"))).rejects.toThrow(
      /nope\.safetensors: file not found/,
    );
    await writeFile(
      p,
      handMade({ ids: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, new Array(8).fill(0)),
    );
    await expect(readSafetensors(p)).rejects.toThrow(
      /tensor "ids" has dtype I64; the engine loads F32, F16 and BF16/,
    );
    expect((await readSafetensors(p, { filter: () => false })).size).toBe(0);
  });
});

describe("safetensors writing", () => {
  it("round-trips float32 exactly, keeps metadata, pads the header to 8 bytes", async () => {
    const p = join(dir, "w.safetensors");
    const w = new Float32Array([0.1, -1e-30, 3.4e38, Number.NaN, -0, 7]);
    await writeSafetensors(
      p,
      { "layer.w": { shape: [2, 3], data: w }, b: { shape: [0], data: new Float32Array(0) } },
      { step: "4" },
    );
    const bytes = new Uint8Array(await readFile(p));
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const t = await readSafetensors(p);
    const got = t.get("layer.w");
    expect(got?.shape).toEqual([2, 3]);
    expect(new Uint8Array(got?.data.buffer ?? new ArrayBuffer(0))).toEqual(
      new Uint8Array(w.buffer),
    );
    expect(t.get("b")?.shape).toEqual([0]);
    expect((await readSafetensorsHeader(p)).metadata).toEqual({ step: "4" });
    // The format's canonical order: tensors sorted by name, data contiguous.
    expect(JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)))).toMatchObject({
      b: { dtype: "F32", shape: [0], data_offsets: [0, 0] },
      "layer.w": { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] },
    });
  });

  it("writes BF16 and F16 with round-to-nearest-even", async () => {
    // 1 + 2^-8 is exactly between bf16 1 and 1 + 2^-7: ties go to the even mantissa (1).
    // 1 + 3*2^-8 is between 1 + 2^-7 and 1 + 2^-6: ties to even (1 + 2^-6).
    const v = new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5, 1e-40]);
    expect([...f32ToBf16(v)].map((x) => x.toString(16))).toEqual(["3f80", "3f82", "c020", "1"]);
    expect(
      [...f32ToF16(new Float32Array([1 + 2 ** -11, 65520, 2 ** -25 + 2 ** -35, -0]))].map((x) =>
        x.toString(16),
      ),
    ).toEqual(["3c00", "7c00", "1", "8000"]);
    for (const dtype of ["BF16", "F16"] as const) {
      const p = join(dir, `${dtype}.safetensors`);
      const data = new Float32Array([0.5, -3, 1 / 3, 100]);
      await writeSafetensors(p, new Map([["x", { shape: [4], data }]]), undefined, { dtype });
      const t = (await readSafetensors(p)).get("x");
      expect(t?.dtype).toBe(dtype);
      for (let i = 0; i < 4; i++)
        expect(Math.abs((t?.data[i] ?? 0) - (data[i] ?? 0))).toBeLessThanOrEqual(
          Math.abs(data[i] ?? 0) * 2 ** -8,
        );
    }
  });

  it("f16/bf16 conversions agree with numpy when it is available", () => {
    const halves = new Uint16Array(65536).map((_, i) => i);
    const ours = f16ToF32(halves);
    const script =
      "import numpy as np,sys;h=np.arange(65536,dtype=np.uint16).view(np.float16).astype(np.float32);" +
      "x=np.frombuffer(sys.stdin.buffer.read(),dtype=np.float32);" +
      "sys.stdout.buffer.write(h.tobytes()+x.astype(np.float16).tobytes())";
    const xs = new Float32Array(20000);
    let s = 12345;
    for (let i = 0; i < xs.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      xs[i] = ((s / 2 ** 32) * 2 - 1) * 2 ** ((i % 40) - 25);
    }
    const res = spawnSync("python3", ["-c", script], {
      input: new Uint8Array(xs.buffer),
      maxBuffer: 1 << 24,
    });
    // Skipped (passes vacuously) when python3 or numpy is missing on this machine.
    if (res.error || (res.status !== 0 && /No module named/.test(String(res.stderr)))) return;
    expect(res.status).toBe(0);
    const out = new Uint8Array(res.stdout);
    const theirs = new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + 65536 * 4));
    let widenMismatch = 0;
    for (let h = 0; h < 65536; h++) {
      const a = ours[h] as number;
      const b = theirs[h] as number;
      if (!(Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)))) widenMismatch++;
    }
    expect(widenMismatch).toBe(0);
    const theirF16 = new Uint16Array(out.buffer.slice(out.byteOffset + 65536 * 4));
    const ourF16 = f32ToF16(xs);
    let narrowMismatch = 0;
    for (let i = 0; i < xs.length; i++) if (ourF16[i] !== theirF16[i]) narrowMismatch++;
    expect(narrowMismatch).toBe(0);
    expect(bf16ToF32(new Uint16Array([0x4049]))[0]).toBe(3.140625);
  });

  it("rejects tensors whose data does not match the shape", () => {
    expect(() => encodeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } })).toThrow(
      /tensor "w": shape \[2,2\] has 4 elements but data has 3/,
    );
  });
});

describe("sharded checkpoints", () => {
  async function writeSharded(): Promise<string> {
    await writeSafetensors(join(dir, "model-00001-of-00002.safetensors"), {
      a: { shape: [2], data: new Float32Array([1, 2]) },
    });
    await writeSafetensors(join(dir, "model-00002-of-00002.safetensors"), {
      b: { shape: [1], data: new Float32Array([3]) },
      c: { shape: [1], data: new Float32Array([4]) },
    });
    const index = join(dir, "model.safetensors.index.json");
    await writeFile(
      index,
      JSON.stringify({
        metadata: { total_size: 16 },
        weight_map: {
          a: "model-00001-of-00002.safetensors",
          b: "model-00002-of-00002.safetensors",
          c: "model-00002-of-00002.safetensors",
        },
      }),
    );
    return index;
  }

  it("reads all shards through the index", async () => {
    await writeSharded();
    const t = await readSafetensorsFolder(dir);
    expect([...t.keys()].sort()).toEqual(["a", "b", "c"]);
    expect([...(t.get("a")?.data ?? [])]).toEqual([1, 2]);
    expect([...(t.get("c")?.data ?? [])]).toEqual([4]);
    const only = await readSafetensorsFolder(dir, { filter: (n) => n === "b" });
    expect([...only.keys()]).toEqual(["b"]);
  });

  it("names a tensor the index misplaces and rejects paths outside the folder", async () => {
    const index = await writeSharded();
    await writeFile(
      index,
      JSON.stringify({ weight_map: { a: "model-00002-of-00002.safetensors" } }),
    );
    await expect(readShardedSafetensors(index)).rejects.toThrow(
      /places tensor "a" in this shard, but it is not there/,
    );
    await writeFile(index, JSON.stringify({ weight_map: { a: "../etc/passwd" } }));
    await expect(readShardedSafetensors(index)).rejects.toThrow(
      /weight_map\["a"\] must be a shard file name/,
    );
  });

  it("explains an empty folder", async () => {
    await expect(readSafetensorsFolder(dir)).rejects.toThrow(
      /no model\.safetensors or model\.safetensors\.index\.json/,
    );
  });
});

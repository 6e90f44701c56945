import { describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { ZstdOutputLimitError, zstdCompress, zstdDecompress } from "../../src/client/wire/zstd.js";

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

/** A zstd frame without a content size: `blocks` RLE blocks of 128 KiB each (a tiny bomb). */
function rleBomb(blocks: number): Uint8Array {
  const out = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38]; // magic, FHD (no FCS), window 128 KiB
  for (let i = 0; i < blocks; i++) {
    const last = i === blocks - 1 ? 1 : 0;
    const header = last | (1 << 1) | ((128 * 1024) << 3); // RLE block of 128 KiB
    out.push(header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff, 0x41);
  }
  return new Uint8Array(out);
}

describe("zstd", () => {
  it("round-trips compressible and random bytes", async () => {
    const text = new TextEncoder().encode("forward_backward ".repeat(20000));
    const c = await zstdCompress(text);
    expect(c.length).toBeLessThan(text.length / 20);
    expect(same(await zstdDecompress(c, text.length), text)).toBe(true);
    const random = new Uint8Array(100_000);
    let x = 12345;
    for (let i = 0; i < random.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      random[i] = x >>> 24;
    }
    expect(same(await zstdDecompress(await zstdCompress(random, 1), random.length), random)).toBe(
      true,
    );
    expect(await zstdDecompress(await zstdCompress(new Uint8Array(0)), 0)).toEqual(
      new Uint8Array(0),
    );
  });

  it("rejects a frame that declares more than the cap before decoding", async () => {
    const c = await zstdCompress(new Uint8Array(2_000_000));
    await expect(zstdDecompress(c, 1_000_000)).rejects.toBeInstanceOf(ZstdOutputLimitError);
    await expect(zstdDecompress(c, 1_000_000)).rejects.toThrow(/declares 2000000 bytes/);
    expect((await zstdDecompress(c, 2_000_000)).length).toBe(2_000_000);
  });

  it("stops a frame without a declared size once the output passes the cap", async () => {
    const bomb = rleBomb(64); // 8 MiB from 262 bytes
    expect(bomb.length).toBeLessThan(300);
    const full = await zstdDecompress(bomb, 8 * 1024 * 1024);
    expect(full.length).toBe(8 * 1024 * 1024);
    expect(full.every((b) => b === 0x41)).toBe(true);
    const err = await zstdDecompress(bomb, 1024 * 1024).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZstdOutputLimitError);
    expect((err as ZstdOutputLimitError).limit).toBe(1024 * 1024);
    expect((err as ZstdOutputLimitError).field).toBe("body");
  });

  it("reports corrupt input as a validation error", async () => {
    await expect(zstdDecompress(new Uint8Array([1, 2, 3, 4, 5, 6, 7]), 100)).rejects.toBeInstanceOf(
      TinkerValidationError,
    );
    const c = await zstdCompress(new TextEncoder().encode("hello hello hello hello"));
    await expect(zstdDecompress(c.subarray(0, c.length - 3), 100)).rejects.toBeInstanceOf(
      TinkerValidationError,
    );
  });
});

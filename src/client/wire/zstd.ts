/**
 * zstd for forward_backward bodies (`Content-Encoding: zstd`, server flag `proto_compress_fwdbwd`).
 *
 * Node >= 22.15 ships zstd in `node:zlib` and it is used when present. On Node 20 compression
 * goes through `@bokuweb/zstd-wasm` (the reference zstd C library compiled to WebAssembly, loaded
 * lazily on first use) and decompression through `fzstd` (pure JS, streaming), because streaming
 * lets the output cap stop a decompression bomb as soon as it is crossed instead of after
 * allocating whatever size the frame header claims.
 */

import * as zlib from "node:zlib";
import { Decompress } from "fzstd";
import { TinkerValidationError } from "../errors.js";

/** Decompressed output would exceed the caller's cap (a likely decompression bomb). */
export class ZstdOutputLimitError extends TinkerValidationError {
  override name = "ZstdOutputLimitError";
  readonly limit: number;
  constructor(limit: number, detail: string) {
    super(`zstd body decompresses to more than the ${limit}-byte limit (${detail})`, "body");
    this.limit = limit;
  }
}

type Callback = (err: Error | null, out: Buffer) => void;
interface NodeZstd {
  zstdCompress?: (buf: Uint8Array, opts: { params: Record<number, number> }, cb: Callback) => void;
  zstdDecompress?: (buf: Uint8Array, opts: { maxOutputLength: number }, cb: Callback) => void;
  constants: Record<string, number>;
}
const nodeZstd = zlib as unknown as NodeZstd;

/** Which implementation this process uses (for benchmarks and diagnostics). */
export const zstdBackend: "node:zlib" | "wasm+fzstd" =
  typeof nodeZstd.zstdCompress === "function" && typeof nodeZstd.zstdDecompress === "function"
    ? "node:zlib"
    : "wasm+fzstd";

function asBytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

let wasm: Promise<typeof import("@bokuweb/zstd-wasm")> | undefined;
function loadWasm(): Promise<typeof import("@bokuweb/zstd-wasm")> {
  wasm ??= import("@bokuweb/zstd-wasm").then(async (m) => {
    await m.init();
    return m;
  });
  return wasm;
}

/** Compress `bytes` as one zstd frame (level 3, zstd's default, unless given). */
export async function zstdCompress(bytes: Uint8Array, level = 3): Promise<Uint8Array> {
  if (zstdBackend === "node:zlib") {
    const param = nodeZstd.constants["ZSTD_c_compressionLevel"] ?? 100;
    return new Promise((resolve, reject) => {
      nodeZstd.zstdCompress!(bytes, { params: { [param]: level } }, (err, out) =>
        err ? reject(err) : resolve(asBytes(out)),
      );
    });
  }
  const m = await loadWasm();
  return m.compress(bytes, level);
}

const ZSTD_MAGIC = 0xfd2fb528;
const MIN_WINDOW_LIMIT = 8 * 1024 * 1024;

/**
 * Check the first frame header before decoding: a declared content size above the cap fails at
 * once, and so does a window larger than max(cap, 8 MiB) (a decoder allocates its window).
 */
function checkFrameHeader(bytes: Uint8Array, cap: number): void {
  if (bytes.length < 6) return;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== ZSTD_MAGIC) {
    throw new TinkerValidationError("body is not zstd data (bad frame magic number)", "body");
  }
  const fhd = bytes[4]!;
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  const dictIdSize = [0, 1, 2, 4][fhd & 3]!;
  let at = 5;
  let windowSize = 0;
  if (!singleSegment) {
    const wd = bytes[at++]!;
    const windowLog = 10 + (wd >> 3);
    const base = 2 ** windowLog;
    windowSize = base + (base / 8) * (wd & 7);
  }
  at += dictIdSize;
  const fcsSize = fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag]!;
  if (fcsSize > 0 && at + fcsSize <= bytes.length) {
    let fcs: number;
    if (fcsSize === 1) fcs = dv.getUint8(at);
    else if (fcsSize === 2) fcs = dv.getUint16(at, true) + 256;
    else if (fcsSize === 4) fcs = dv.getUint32(at, true);
    else fcs = Number(dv.getBigUint64(at, true));
    if (fcs > cap) throw new ZstdOutputLimitError(cap, `the frame declares ${fcs} bytes`);
    if (singleSegment) windowSize = fcs;
  }
  if (windowSize > Math.max(cap, MIN_WINDOW_LIMIT)) {
    throw new ZstdOutputLimitError(cap, `the frame asks for a ${windowSize}-byte window`);
  }
}

/**
 * Decompress a zstd body, failing with {@link ZstdOutputLimitError} as soon as the output would
 * pass `maxOutputBytes`, and with `TinkerValidationError` on corrupt data.
 */
export async function zstdDecompress(
  bytes: Uint8Array,
  maxOutputBytes: number,
): Promise<Uint8Array> {
  if (!Number.isInteger(maxOutputBytes) || maxOutputBytes < 0) {
    throw new TinkerValidationError(
      `maxOutputBytes must be a non-negative integer, got ${maxOutputBytes}`,
      "maxOutputBytes",
    );
  }
  checkFrameHeader(bytes, maxOutputBytes);
  if (zstdBackend === "node:zlib") {
    return new Promise((resolve, reject) => {
      nodeZstd.zstdDecompress!(bytes, { maxOutputLength: maxOutputBytes }, (err, out) => {
        if (!err) return resolve(asBytes(out));
        if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
          return reject(new ZstdOutputLimitError(maxOutputBytes, "stopped while decoding"));
        }
        reject(new TinkerValidationError(`invalid zstd data: ${err.message}`, "body"));
      });
    });
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  const stream = new Decompress((chunk) => {
    total += chunk.length;
    if (total > maxOutputBytes) {
      throw new ZstdOutputLimitError(maxOutputBytes, "stopped while decoding");
    }
    parts.push(chunk);
  });
  try {
    stream.push(bytes, true);
  } catch (e) {
    if (e instanceof TinkerValidationError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new TinkerValidationError(`invalid zstd data: ${msg}`, "body");
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

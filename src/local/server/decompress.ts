import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { Decompress } from "fzstd";
import { TinkerValidationError } from "../../client/errors.js";
import { ZstdOutputLimitError, zstdBackend, zstdDecompress } from "../../client/wire/zstd.js";
import { Semaphore } from "./semaphore.js";

/**
 * Decompression of zstd request bodies off the event loop. Node 20 has no native zstd, and the
 * pure-JS decoder runs synchronously: a 30 KB bomb would freeze every client for seconds. Each
 * body is decoded in a short-lived worker thread (its memory goes with it), one at a time.
 */

/** Plain CommonJS, so it runs from the bundle and from TypeScript sources alike. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { Decompress } = require(workerData.fzstd);
const { input, cap } = workerData;
let out = new Uint8Array(Math.min(cap, Math.max(1024, input.length * 4)));
let total = 0;
try {
  const d = new Decompress((chunk) => {
    if (total + chunk.length > cap) throw new Error("TINKER_LIMIT");
    if (total + chunk.length > out.length) {
      const bigger = new Uint8Array(Math.min(cap, Math.max(out.length * 2, total + chunk.length)));
      bigger.set(out.subarray(0, total));
      out = bigger;
    }
    out.set(chunk, total);
    total += chunk.length;
  });
  d.push(input, true);
  const result = out.slice(0, total);
  parentPort.postMessage({ ok: true, out: result }, [result.buffer]);
} catch (e) {
  const message = e && e.message ? e.message : String(e);
  parentPort.postMessage({ ok: false, limit: message === "TINKER_LIMIT", message });
}
`;

const oneAtATime = new Semaphore(1);
let fzstdPath: string | undefined;

/**
 * Decompresses a zstd body without blocking the event loop. Fails with
 * {@link ZstdOutputLimitError} once the output would pass `cap`, TinkerValidationError on corrupt data.
 */
export function decompressZstdBody(input: Uint8Array, cap: number): Promise<Uint8Array> {
  // node:zlib (Node >= 22.15) already decodes on the libuv thread pool.
  if (zstdBackend === "node:zlib") return zstdDecompress(input, cap);
  return oneAtATime.run(() => inWorker(input, cap));
}

function inWorker(input: Uint8Array, cap: number): Promise<Uint8Array> {
  fzstdPath ??= createRequire(import.meta.url).resolve("fzstd");
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { fzstd: fzstdPath, input, cap },
  });
  return new Promise<Uint8Array>((resolve, reject) => {
    let settled = false;
    worker.once(
      "message",
      (msg: { ok: true; out: Uint8Array } | { ok: false; limit: boolean; message: string }) => {
        settled = true;
        if (msg.ok) resolve(msg.out);
        else if (msg.limit) reject(new ZstdOutputLimitError(cap, "stopped while decoding"));
        else reject(new TinkerValidationError(`invalid zstd data: ${msg.message}`, "body"));
        void worker.terminate();
      },
    );
    worker.once("error", (err) => {
      if (!settled) reject(new TinkerValidationError(`invalid zstd data: ${err.message}`, "body"));
      settled = true;
    });
    worker.once("exit", (code) => {
      if (!settled) reject(new Error(`zstd worker exited with code ${code}`));
      settled = true;
    });
  });
}

/**
 * The first bytes of a zstd body, decoding as little as possible (one block of at most 128 KiB):
 * enough to read the leading fields of a protobuf message before paying for the whole body.
 * Undefined when the body is corrupt or too short.
 */
export function zstdPrefix(input: Uint8Array, want: number): Uint8Array | undefined {
  const parts: Uint8Array[] = [];
  let total = 0;
  const stop = new Error("enough");
  const d = new Decompress((chunk) => {
    parts.push(chunk);
    total += chunk.length;
    if (total >= want) throw stop;
  });
  try {
    // Growing pieces: little decoding when the first block is small, linear work when it is not.
    // A block is at most 128 KiB, so its first one is whole within the first 256 KiB of input.
    const end = Math.min(input.length, 256 * 1024);
    for (let at = 0, step = 64; at < end && total < want; at += step, step *= 2) {
      const to = Math.min(at + step, end);
      d.push(input.subarray(at, to), to >= input.length);
    }
  } catch (err) {
    if (err !== stop) return undefined;
  }
  if (total === 0) return undefined;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The model and seq_id a ForwardBackwardRequest names in its leading fields. */
export interface LeadingRef {
  modelId: string;
  /** Absent when not encoded (proto3 leaves out seq_id 0). */
  seqId?: number;
}

/**
 * Fields 1 (`model_id`) and 2 (`seq_id`) of a ForwardBackwardRequest when the message starts with
 * them, as encoders write fields in number order; readable from a prefix, and from a body whose
 * later fields are corrupt. Undefined when it does not start with a model id.
 */
export function leadingRef(bytes: Uint8Array): LeadingRef | undefined {
  let at = 0;
  const varint = (): number | undefined => {
    let v = 0;
    for (let shift = 0; shift <= 28; shift += 7) {
      const b = bytes[at++];
      if (b === undefined) return undefined;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
    return undefined;
  };
  if (bytes[at++] !== 0x0a) return undefined;
  const len = varint();
  if (len === undefined || at + len > bytes.length) return undefined;
  const modelId = Buffer.from(bytes.subarray(at, at + len)).toString("utf8");
  at += len;
  if (bytes[at] !== 0x10) return { modelId };
  at++;
  const seqId = varint();
  return seqId === undefined ? { modelId } : { modelId, seqId };
}

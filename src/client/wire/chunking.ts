/**
 * Splitting a forward_backward batch into HTTP requests by the server's limits
 * (`fwdbwd_max_chunk_len`, `fwdbwd_max_chunk_bytes_count`), with the reference's size estimates.
 */

import type { Datum } from "../types/datum.js";
import type { ModelInputChunk } from "../types/model-input.js";
import type { TensorData } from "../types/tensor-data.js";

function nonTextChunkBytes(c: ModelInputChunk): number {
  switch (c.type) {
    case "image":
      return c.data.length;
    case "image_asset_pointer":
      return c.location.length;
    case "dmel":
      return c.dmel.length;
    default:
      return 0;
  }
}

function tensorRawBytes(t: TensorData): number {
  const values = t.data.length * (t.dtype === "int64" ? 8 : 4);
  if (!t.sparse) return values;
  return values + 8 * (t.sparse.crowIndices.length + t.sparse.colIndices.length);
}

/**
 * The 0.25.0 estimate of a datum's protobuf size: 4 bytes per text token, the raw bytes of
 * image/dmel chunks (the location length for image pointers), each tensor's raw bytes (8 per int64
 * value, 4 per float32), and 8 bytes per sparse index.
 */
export function estimateDatumBytes(d: Datum): number {
  let n = 0;
  for (const c of d.modelInput.chunks) {
    n += c.type === "encoded_text" ? c.tokens.length * 4 : nonTextChunkBytes(c);
  }
  for (const t of Object.values(d.lossFnInputs)) n += tensorRawBytes(t);
  return n;
}

/**
 * The pre-0.25 estimate (JSON bodies): 10 bytes per text token and per stored tensor value, the
 * raw bytes of image/dmel chunks.
 */
export function estimateDatumBytesLegacy(d: Datum): number {
  let n = 0;
  for (const c of d.modelInput.chunks) {
    n += c.type === "encoded_text" ? c.tokens.length * 10 : nonTextChunkBytes(c);
  }
  for (const t of Object.values(d.lossFnInputs)) n += t.data.length * 10;
  return n;
}

export interface ChunkOptions {
  /** Most datums per request (server flag `fwdbwd_max_chunk_len`, default 1024). */
  maxChunkLen?: number;
  /** Most estimated bytes per request (`fwdbwd_max_chunk_bytes_count`, default 5,000,000). */
  maxChunkBytes?: number;
  /** Size estimate; default {@link estimateDatumBytes} (use the legacy one for the JSON path). */
  estimate?: (d: Datum) => number;
}

/** One request's worth of datums, with the estimate the dispatch byte budget reserves. */
export interface DatumChunk {
  data: Datum[];
  estimatedBytes: number;
}

/**
 * Split `data` in order: a chunk closes when it holds `maxChunkLen` datums or when the next datum
 * would push it past `maxChunkBytes`. A datum larger than the byte limit goes alone.
 */
export function chunkDatumsWithSizes(
  data: readonly Datum[],
  opts: ChunkOptions = {},
): DatumChunk[] {
  const maxLen = opts.maxChunkLen ?? 1024;
  const maxBytes = opts.maxChunkBytes ?? 5_000_000;
  const estimate = opts.estimate ?? estimateDatumBytes;
  const chunks: DatumChunk[] = [];
  let current: Datum[] = [];
  let bytes = 0;
  for (const d of data) {
    const est = estimate(d);
    if (current.length > 0 && (bytes + est > maxBytes || current.length >= maxLen)) {
      chunks.push({ data: current, estimatedBytes: bytes });
      current = [];
      bytes = 0;
    }
    current.push(d);
    bytes += est;
  }
  if (current.length > 0) chunks.push({ data: current, estimatedBytes: bytes });
  return chunks;
}

/** {@link chunkDatumsWithSizes} without the sizes. */
export function chunkDatums(data: readonly Datum[], opts: ChunkOptions = {}): Datum[][] {
  return chunkDatumsWithSizes(data, opts).map((c) => c.data);
}

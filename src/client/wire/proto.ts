/**
 * Protobuf codecs of `tinker_public.proto` (reference §7.13), hand-written over a sized buffer.
 *
 * - `ForwardBackwardRequest`: the 0.25.0 body of `POST /api/v1/forward_backward`. Encoding is
 *   byte-identical to the Python SDK for the same datum: fields in schema order, proto3 defaults
 *   omitted, map entries with key and value always written, in the insertion order of
 *   `lossFnInputs` (the SDK's upb map has no other reproducible order), int64 tensors as 8-byte
 *   little-endian values.
 * - `ForwardBackwardOutput` and `SampleResponse`: what `retrieve_future` returns when asked for
 *   `application/x-protobuf`.
 *
 * Decoded tensors are views over the received bytes when the data is 4-byte aligned (they keep the
 * whole buffer alive); unaligned data, int64 (narrowed to int32 storage) and bfloat16 (widened to
 * float32) are copied.
 */

import { APIResponseValidationError, TinkerValidationError } from "../errors.js";
import type { Datum } from "../types/datum.js";
import { ModelInput, type ModelInputChunk } from "../types/model-input.js";
import { toNullableNumberList, toNumberList } from "../types/number-lists.js";
import type { ForwardBackwardOutput, SampledSequence, SampleResponse } from "../types/outputs.js";
import type { LossFnConfig, SamplingParams } from "../types/params.js";
import { TensorData, type TensorStorage } from "../types/tensor-data.js";
import {
  BinaryReader,
  bfloat16ToFloat32,
  delimitedSize,
  expectWireType,
  float32View,
  int32View,
  int64ToInt32,
  int64ToNumbers,
  packedInt64Size,
  readInt64,
  readRepeatedInt64,
  SizedWriter,
  subMessageEnd,
  tagSize,
  utf8Size,
  varintSize,
  WireDecodeError,
  WireType,
} from "./proto-codec.js";

/** `tinker_public.DType`. */
export const ProtoDType = {
  UNSPECIFIED: 0,
  FLOAT32: 1,
  INT64: 2,
  INT32: 3,
  BFLOAT16: 4,
} as const;

/** The decoded form of a `ForwardBackwardRequest` (what the server receives). */
export interface ForwardBackwardRequest {
  modelId: string;
  seqId: number;
  data: Datum[];
  lossFn: string;
  /** Empty when the request carried none. */
  lossFnConfig: Record<string, number>;
  forwardOnly: boolean;
}

/** Input of {@link encodeForwardBackwardRequest}. */
export interface ForwardBackwardRequestInput {
  modelId: string;
  seqId: number;
  data: readonly Datum[];
  lossFn: string;
  lossFnConfig?: LossFnConfig | undefined;
  forwardOnly?: boolean | undefined;
}

const SPARSE_SENTINEL_TOKEN = 0;
const SPARSE_SENTINEL_LOGPROB = -99999;

// ---------------------------------------------------------------------------------------------
// ForwardBackwardRequest: encode

/** Bytes a tensor's values take on the wire (int64 tensors are 8 bytes per element). */
function valueBytes(t: TensorData): number {
  return t.data.length * (t.dtype === "int64" ? 8 : 4);
}

function tensorSize(t: TensorData): number {
  let n = 0;
  if (t.sparse) {
    n += delimitedSize(2, sparseSize(t));
  } else {
    n += delimitedSize(1, valueBytes(t));
  }
  n += tagSize(3) + 1; // dtype: 1 or 2, one byte
  if (t.shape.length > 0) n += delimitedSize(4, packedInt64Size(t.shape));
  return n;
}

function sparseSize(t: TensorData): number {
  const sp = t.sparse!;
  let n = 0;
  if (t.data.length > 0) n += delimitedSize(1, valueBytes(t));
  if (sp.crowIndices.length > 0) n += delimitedSize(2, sp.crowIndices.length * 8);
  if (sp.colIndices.length > 0) n += delimitedSize(3, sp.colIndices.length * 8);
  return n;
}

function writeValues(w: SizedWriter, t: TensorData): void {
  if (t.dtype === "int64") w.int64FromInt32(t.data as Int32Array);
  else w.typed32(t.data);
}

function writeTensor(w: SizedWriter, t: TensorData): void {
  if (t.sparse) {
    w.tag(2, WireType.LengthDelimited).varint(sparseSize(t));
    if (t.data.length > 0) writeValues(w.tag(1, WireType.LengthDelimited), t);
    if (t.sparse.crowIndices.length > 0) {
      w.tag(2, WireType.LengthDelimited).int64FromInt32(t.sparse.crowIndices);
    }
    if (t.sparse.colIndices.length > 0) {
      w.tag(3, WireType.LengthDelimited).int64FromInt32(t.sparse.colIndices);
    }
  } else {
    writeValues(w.tag(1, WireType.LengthDelimited), t);
  }
  w.tag(3, WireType.Varint).varint(t.dtype === "int64" ? ProtoDType.INT64 : ProtoDType.FLOAT32);
  if (t.shape.length > 0) w.tag(4, WireType.LengthDelimited).packedInt64(t.shape);
}

function chunkBodySize(c: ModelInputChunk, path: string): number {
  switch (c.type) {
    case "encoded_text":
      return c.tokens.length > 0 ? delimitedSize(1, c.tokens.byteLength) : 0;
    case "image": {
      let n = c.data.length > 0 ? delimitedSize(1, c.data.length) : 0;
      if (c.format) n += delimitedSize(2, utf8Size(c.format));
      if (c.expectedTokens !== undefined) n += tagSize(3) + varintSize(c.expectedTokens);
      return n;
    }
    case "dmel":
      return c.dmel.length > 0 ? delimitedSize(1, c.dmel.length) : 0;
    case "image_asset_pointer":
      throw new TinkerValidationError(
        "image_asset_pointer chunks cannot be sent in a protobuf forward_backward request " +
          "(the reference SDK refuses them too); send the image bytes as an image chunk instead",
        path,
      );
  }
}

const CHUNK_FIELD = { encoded_text: 1, image: 2, dmel: 3 } as const;

function chunkSize(c: ModelInputChunk, path: string): number {
  const field = CHUNK_FIELD[c.type as keyof typeof CHUNK_FIELD];
  return delimitedSize(1, delimitedSize(field, chunkBodySize(c, path)));
}

function writeChunk(w: SizedWriter, c: ModelInputChunk, path: string): void {
  const body = chunkBodySize(c, path);
  const field = CHUNK_FIELD[c.type as keyof typeof CHUNK_FIELD];
  w.tag(1, WireType.LengthDelimited).varint(delimitedSize(field, body));
  w.tag(field, WireType.LengthDelimited).varint(body);
  switch (c.type) {
    case "encoded_text":
      if (c.tokens.length > 0) w.tag(1, WireType.LengthDelimited).typed32(c.tokens);
      break;
    case "image":
      if (c.data.length > 0) w.tag(1, WireType.LengthDelimited).bytes(c.data);
      if (c.format) w.tag(2, WireType.LengthDelimited).string(c.format, utf8Size(c.format));
      if (c.expectedTokens !== undefined) w.tag(3, WireType.Varint).varint(c.expectedTokens);
      break;
    case "dmel":
      if (c.dmel.length > 0) w.tag(1, WireType.LengthDelimited).bytes(c.dmel);
      break;
    default:
      break;
  }
}

function tensorEntrySize(key: string, t: TensorData): number {
  return delimitedSize(1, utf8Size(key)) + delimitedSize(2, tensorSize(t));
}

function datumSize(d: Datum, path: string): number {
  let n = 0;
  d.modelInput.chunks.forEach((c, i) => {
    n += chunkSize(c, `${path}.model_input[${i}]`);
  });
  for (const [key, t] of Object.entries(d.lossFnInputs)) {
    n += delimitedSize(2, tensorEntrySize(key, t));
  }
  return n;
}

function writeDatum(w: SizedWriter, d: Datum, path: string): void {
  d.modelInput.chunks.forEach((c, i) => {
    writeChunk(w, c, `${path}.model_input[${i}]`);
  });
  for (const [key, t] of Object.entries(d.lossFnInputs)) {
    w.tag(2, WireType.LengthDelimited).varint(tensorEntrySize(key, t));
    w.tag(1, WireType.LengthDelimited).string(key, utf8Size(key));
    w.tag(2, WireType.LengthDelimited).varint(tensorSize(t));
    writeTensor(w, t);
  }
}

function doubleEntrySize(key: string): number {
  return delimitedSize(1, utf8Size(key)) + tagSize(2) + 8;
}

function writeDoubleEntry(w: SizedWriter, fieldNo: number, key: string, value: number): void {
  w.tag(fieldNo, WireType.LengthDelimited).varint(doubleEntrySize(key));
  w.tag(1, WireType.LengthDelimited).string(key, utf8Size(key));
  w.tag(2, WireType.Bit64).double(value);
}

/**
 * Encode a `ForwardBackwardRequest` exactly as the 0.25.0 SDK does.
 * @throws TinkerValidationError for input protobuf cannot carry (image_asset_pointer chunks,
 *   a negative or non-integer seq_id).
 */
export function encodeForwardBackwardRequest(req: ForwardBackwardRequestInput): Uint8Array {
  if (!Number.isInteger(req.seqId) || req.seqId < 0 || req.seqId > 0x7fffffff) {
    throw new TinkerValidationError(
      `seqId must be a non-negative int32, got ${req.seqId}`,
      "seqId",
    );
  }
  const datumSizes = req.data.map((d, i) => datumSize(d, `data[${i}]`));
  const config = Object.entries(req.lossFnConfig ?? {});
  let size = 0;
  if (req.modelId) size += delimitedSize(1, utf8Size(req.modelId));
  if (req.seqId !== 0) size += tagSize(2) + varintSize(req.seqId);
  for (const s of datumSizes) size += delimitedSize(3, s);
  if (req.lossFn) size += delimitedSize(4, utf8Size(req.lossFn));
  for (const [key] of config) size += delimitedSize(5, doubleEntrySize(key));
  if (req.forwardOnly) size += tagSize(6) + 1;

  const w = new SizedWriter(size);
  if (req.modelId) w.tag(1, WireType.LengthDelimited).string(req.modelId, utf8Size(req.modelId));
  if (req.seqId !== 0) w.tag(2, WireType.Varint).varint(req.seqId);
  req.data.forEach((d, i) => {
    w.tag(3, WireType.LengthDelimited).varint(datumSizes[i]!);
    writeDatum(w, d, `data[${i}]`);
  });
  if (req.lossFn) w.tag(4, WireType.LengthDelimited).string(req.lossFn, utf8Size(req.lossFn));
  for (const [key, value] of config) writeDoubleEntry(w, 5, key, value);
  if (req.forwardOnly) w.tag(6, WireType.Varint).varint(1);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// ForwardBackwardRequest: decode

function decodeStorage(bytes: Uint8Array, dtype: number, path: string): TensorStorage {
  switch (dtype) {
    case ProtoDType.FLOAT32:
      return float32View(bytes, path);
    case ProtoDType.INT64:
      return int64ToInt32(bytes, path);
    case ProtoDType.INT32:
      return int32View(bytes, path);
    case ProtoDType.BFLOAT16:
      return bfloat16ToFloat32(bytes, path);
    default:
      throw new WireDecodeError(`unsupported dtype ${dtype}`, path);
  }
}

function readMapEntry<V>(
  r: BinaryReader,
  end: number,
  path: string,
  readValue: (wireType: WireType, key: string) => V,
  emptyValue: () => V,
): [string, V] {
  let key = "";
  let value: V | undefined;
  while (r.pos < end) {
    const [f, wt] = r.tag();
    if (f === 1) {
      expectWireType(wt, WireType.LengthDelimited, `${path}.key`);
      key = r.string();
    } else if (f === 2) {
      value = readValue(wt, key);
    } else r.skip(wt, f);
  }
  return [key, value ?? emptyValue()];
}

function decodeTensor(r: BinaryReader, end: number, path: string): TensorData {
  let dense: Uint8Array | undefined;
  let sparse: { values: Uint8Array; crow: Uint8Array; col: Uint8Array } | undefined;
  type Bytes = Uint8Array;
  let dtype = 0;
  const shape: number[] = [];
  while (r.pos < end) {
    const [f, wt] = r.tag();
    switch (f) {
      case 1:
        expectWireType(wt, WireType.LengthDelimited, `${path}.dense`);
        dense = r.bytes();
        sparse = undefined;
        break;
      case 2: {
        const subEnd = subMessageEnd(r, wt, `${path}.sparse_csr`);
        const s: { values: Bytes; crow: Bytes; col: Bytes } = {
          values: new Uint8Array(0),
          crow: new Uint8Array(0),
          col: new Uint8Array(0),
        };
        while (r.pos < subEnd) {
          const [g, gwt] = r.tag();
          if (g >= 1 && g <= 3) {
            expectWireType(gwt, WireType.LengthDelimited, `${path}.sparse_csr`);
            const b = r.bytes();
            if (g === 1) s.values = b;
            else if (g === 2) s.crow = b;
            else s.col = b;
          } else r.skip(gwt, g);
        }
        sparse = s;
        dense = undefined;
        break;
      }
      case 3:
        expectWireType(wt, WireType.Varint, `${path}.dtype`);
        dtype = r.int32();
        break;
      case 4:
        readRepeatedInt64(r, wt, shape, `${path}.shape`);
        break;
      default:
        r.skip(wt, f);
    }
  }
  try {
    if (sparse) {
      if (shape.length !== 2) {
        throw new WireDecodeError(`a sparse tensor needs a 2-D shape, got [${shape}]`, path);
      }
      return TensorData.fromCsr(
        decodeStorage(sparse.values, dtype, `${path}.sparse_csr.values`),
        int64ToInt32(sparse.crow, `${path}.sparse_csr.crow_indices`),
        int64ToInt32(sparse.col, `${path}.sparse_csr.col_indices`),
        [shape[0]!, shape[1]!],
      );
    }
    const data = decodeStorage(dense ?? new Uint8Array(0), dtype, `${path}.dense`);
    return TensorData.fromTyped(data, shape.length > 0 ? shape : undefined);
  } catch (e) {
    if (e instanceof TinkerValidationError) throw new WireDecodeError(e.message, path);
    throw e;
  }
}

function decodeChunk(r: BinaryReader, end: number, path: string): ModelInputChunk {
  let chunk: ModelInputChunk | undefined;
  while (r.pos < end) {
    const [f, wt] = r.tag();
    if (f < 1 || f > 3) {
      r.skip(wt, f);
      continue;
    }
    const subEnd = subMessageEnd(r, wt, path);
    let bytes: Uint8Array = new Uint8Array(0);
    let format = "";
    let expectedTokens: number | undefined;
    while (r.pos < subEnd) {
      const [g, gwt] = r.tag();
      if (g === 1) {
        expectWireType(gwt, WireType.LengthDelimited, path);
        bytes = r.bytes();
      } else if (g === 2 && f === 2) {
        expectWireType(gwt, WireType.LengthDelimited, `${path}.image.format`);
        format = r.string();
      } else if (g === 3 && f === 2) {
        expectWireType(gwt, WireType.Varint, `${path}.image.expected_tokens`);
        expectedTokens = r.int32();
      } else r.skip(gwt, g);
    }
    if (f === 1) {
      chunk = { type: "encoded_text", tokens: int32View(bytes, `${path}.encoded_text.tokens`) };
    } else if (f === 2) {
      if (format !== "png" && format !== "jpeg") {
        throw new WireDecodeError(`image format must be "png" or "jpeg", got "${format}"`, path);
      }
      chunk =
        expectedTokens === undefined
          ? { type: "image", data: bytes, format }
          : { type: "image", data: bytes, format, expectedTokens };
    } else {
      chunk = { type: "dmel", dmel: bytes };
    }
  }
  if (!chunk) throw new WireDecodeError("empty chunk (no encoded_text, image or dmel)", path);
  return chunk;
}

function decodeDatum(r: BinaryReader, end: number, path: string): Datum {
  const chunks: ModelInputChunk[] = [];
  const lossFnInputs: Record<string, TensorData> = {};
  while (r.pos < end) {
    const [f, wt] = r.tag();
    if (f === 1) {
      const e = subMessageEnd(r, wt, `${path}.model_input`);
      chunks.push(decodeChunk(r, e, `${path}.model_input[${chunks.length}]`));
    } else if (f === 2) {
      const e = subMessageEnd(r, wt, `${path}.loss_fn_inputs`);
      const [key, value] = readMapEntry(
        r,
        e,
        `${path}.loss_fn_inputs`,
        (vwt, k) => {
          const ve = subMessageEnd(r, vwt, `${path}.loss_fn_inputs.${k}`);
          return decodeTensor(r, ve, `${path}.loss_fn_inputs.${k}`);
        },
        () => TensorData.fromTyped(new Float32Array(0)),
      );
      lossFnInputs[key] = value;
    } else r.skip(wt, f);
  }
  return { modelInput: new ModelInput(chunks), lossFnInputs };
}

function readDoubleEntry(r: BinaryReader, wt: WireType, path: string): [string, number] {
  const e = subMessageEnd(r, wt, path);
  return readMapEntry(
    r,
    e,
    path,
    (vwt, k) => {
      expectWireType(vwt, WireType.Bit64, `${path}.${k}`);
      return r.double();
    },
    () => 0,
  );
}

function wrapDecode<T>(what: string, bytes: Uint8Array, fn: (r: BinaryReader) => T): T {
  try {
    return fn(new BinaryReader(bytes));
  } catch (e) {
    if (e instanceof WireDecodeError) {
      throw new WireDecodeError(`invalid ${what}: ${e.message} (at ${e.path})`, e.path);
    }
    const msg = e instanceof Error ? e.message : String(e);
    throw new WireDecodeError(`invalid ${what}: malformed protobuf (${msg})`, "");
  }
}

/**
 * Decode a `ForwardBackwardRequest` body (server side).
 * @throws TinkerValidationError naming the offending field path (e.g. `data[0].loss_fn_inputs.weights`).
 */
export function decodeForwardBackwardRequest(bytes: Uint8Array): ForwardBackwardRequest {
  try {
    return wrapDecode("ForwardBackwardRequest", bytes, (r) => {
      const out: ForwardBackwardRequest = {
        modelId: "",
        seqId: 0,
        data: [],
        lossFn: "",
        lossFnConfig: {},
        forwardOnly: false,
      };
      while (r.pos < r.len) {
        const [f, wt] = r.tag();
        switch (f) {
          case 1:
            expectWireType(wt, WireType.LengthDelimited, "model_id");
            out.modelId = r.string();
            break;
          case 2:
            expectWireType(wt, WireType.Varint, "seq_id");
            out.seqId = r.int32();
            break;
          case 3: {
            const path = `data[${out.data.length}]`;
            out.data.push(decodeDatum(r, subMessageEnd(r, wt, path), path));
            break;
          }
          case 4:
            expectWireType(wt, WireType.LengthDelimited, "loss_fn");
            out.lossFn = r.string();
            break;
          case 5: {
            const [k, v] = readDoubleEntry(r, wt, "loss_fn_config");
            out.lossFnConfig[k] = v;
            break;
          }
          case 6:
            expectWireType(wt, WireType.Varint, "forward_only");
            out.forwardOnly = r.bool();
            break;
          default:
            r.skip(wt, f);
        }
      }
      return out;
    });
  } catch (e) {
    if (e instanceof WireDecodeError) throw new TinkerValidationError(e.message, e.path);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// ForwardBackwardOutput

interface RecordField {
  key: string;
  dtype: number;
  trailingShape: number[];
  tensors: TensorData[];
  dataBytes: number;
}

interface RecordGroup {
  fields: RecordField[];
  count: number;
}

/** Group consecutive datums whose fields agree in name, dtype and trailing shape. */
function groupRecords(outputs: ReadonlyArray<Record<string, TensorData>>): RecordGroup[] {
  const records: RecordGroup[] = [];
  let current: RecordGroup | undefined;
  let signature = "";
  for (const out of outputs) {
    const entries = Object.entries(out);
    const sig = entries.map(([k, t]) => `${k}|${t.dtype}|${t.shape.slice(1).join(",")}`).join(";");
    if (!current || sig !== signature) {
      current = {
        fields: entries.map(([key, t]) => ({
          key,
          dtype: t.dtype === "int64" ? ProtoDType.INT64 : ProtoDType.FLOAT32,
          trailingShape: t.shape.slice(1),
          tensors: [],
          dataBytes: 0,
        })),
        count: 0,
      };
      records.push(current);
      signature = sig;
    }
    current.count++;
    entries.forEach(([, t], i) => {
      const field = current!.fields[i]!;
      const dense = t.densify();
      field.tensors.push(dense);
      field.dataBytes += valueBytes(dense);
    });
  }
  return records;
}

function batchedTensorSize(f: RecordField): number {
  let n = 0;
  if (f.dataBytes > 0) n += delimitedSize(1, f.dataBytes);
  n += delimitedSize(2, (f.tensors.length + 1) * 8);
  n += tagSize(3) + 1;
  if (f.trailingShape.length > 0) n += delimitedSize(4, packedInt64Size(f.trailingShape));
  return n;
}

function fieldEntrySize(f: RecordField): number {
  return delimitedSize(1, utf8Size(f.key)) + delimitedSize(2, batchedTensorSize(f));
}

const RECORD_TYPE_TAG = "ArrayRecord";

function recordSize(fields: RecordField[], numDatums: number): number {
  let n = delimitedSize(1, utf8Size(RECORD_TYPE_TAG));
  for (const f of fields) n += delimitedSize(2, fieldEntrySize(f));
  if (numDatums > 0) n += tagSize(3) + varintSize(numDatums);
  return n;
}

function writeBatchedTensor(w: SizedWriter, f: RecordField): void {
  if (f.dataBytes > 0) {
    w.tag(1, WireType.LengthDelimited).varint(f.dataBytes);
    for (const t of f.tensors) {
      if (t.dtype === "int64") w.rawInt64FromInt32(t.data as Int32Array);
      else w.rawTyped32(t.data);
    }
  }
  const offsets: number[] = [0];
  for (const t of f.tensors) offsets.push(offsets[offsets.length - 1]! + valueBytes(t));
  w.tag(2, WireType.LengthDelimited).int64FromNumbers(offsets);
  w.tag(3, WireType.Varint).varint(f.dtype);
  if (f.trailingShape.length > 0) w.tag(4, WireType.LengthDelimited).packedInt64(f.trailingShape);
}

/**
 * Encode a `ForwardBackwardOutput` (server side). Consecutive datums with the same fields, dtypes
 * and trailing shapes share one `ArrayRecord`; int64 outputs are sent as `DTYPE_INT64`.
 */
export function encodeForwardBackwardOutput(out: ForwardBackwardOutput): Uint8Array {
  const records = groupRecords(out.lossFnOutputs);
  const recordSizes = records.map((r) => recordSize(r.fields, r.count));
  const metrics = Object.entries(out.metrics);
  let size = 0;
  if (out.lossFnOutputType) size += delimitedSize(1, utf8Size(out.lossFnOutputType));
  for (const s of recordSizes) size += delimitedSize(2, s);
  for (const [k] of metrics) size += delimitedSize(3, doubleEntrySize(k));

  const w = new SizedWriter(size);
  if (out.lossFnOutputType) {
    w.tag(1, WireType.LengthDelimited).string(out.lossFnOutputType, utf8Size(out.lossFnOutputType));
  }
  records.forEach(({ fields, count }, r) => {
    w.tag(2, WireType.LengthDelimited).varint(recordSizes[r]!);
    w.tag(1, WireType.LengthDelimited).string(RECORD_TYPE_TAG, utf8Size(RECORD_TYPE_TAG));
    for (const f of fields) {
      w.tag(2, WireType.LengthDelimited).varint(fieldEntrySize(f));
      w.tag(1, WireType.LengthDelimited).string(f.key, utf8Size(f.key));
      w.tag(2, WireType.LengthDelimited).varint(batchedTensorSize(f));
      writeBatchedTensor(w, f);
    }
    if (count > 0) w.tag(3, WireType.Varint).varint(count);
  });
  for (const [k, v] of metrics) writeDoubleEntry(w, 3, k, v);
  return w.finish();
}

interface DecodedBatched {
  data: Uint8Array;
  offsets: number[];
  dtype: number;
  trailingShape: number[];
}

const MAX_FIELDLESS_DATUMS = 1 << 24;

const DTYPE_BYTES: Readonly<Record<number, number>> = { 1: 4, 2: 8, 3: 4, 4: 2 };

function decodeBatched(r: BinaryReader, end: number, path: string): DecodedBatched {
  const out: DecodedBatched = {
    data: new Uint8Array(0) as Uint8Array,
    offsets: [],
    dtype: 0,
    trailingShape: [],
  };
  while (r.pos < end) {
    const [f, wt] = r.tag();
    switch (f) {
      case 1:
        expectWireType(wt, WireType.LengthDelimited, `${path}.data`);
        out.data = r.bytes();
        break;
      case 2:
        expectWireType(wt, WireType.LengthDelimited, `${path}.offsets`);
        out.offsets = int64ToNumbers(r.bytes(), `${path}.offsets`);
        break;
      case 3:
        expectWireType(wt, WireType.Varint, `${path}.dtype`);
        out.dtype = r.int32();
        break;
      case 4:
        readRepeatedInt64(r, wt, out.trailingShape, `${path}.trailing_shape`);
        break;
      default:
        r.skip(wt, f);
    }
  }
  return out;
}

function splitBatched(b: DecodedBatched, n: number, path: string): TensorData[] {
  const elemBytes = DTYPE_BYTES[b.dtype];
  if (elemBytes === undefined) throw new WireDecodeError(`unsupported dtype ${b.dtype}`, path);
  if (b.offsets.length !== n + 1) {
    throw new WireDecodeError(
      `offsets has ${b.offsets.length} entries, expected num_datums + 1 = ${n + 1}`,
      `${path}.offsets`,
    );
  }
  const trailing = b.trailingShape.reduce((a, c) => a * c, 1);
  const out: TensorData[] = [];
  for (let i = 0; i < n; i++) {
    const start = b.offsets[i]!;
    const stop = b.offsets[i + 1]!;
    if (start < 0 || stop < start || stop > b.data.length) {
      throw new WireDecodeError(
        `byte range [${start}, ${stop}) is outside the ${b.data.length}-byte data`,
        `${path}.offsets`,
      );
    }
    const storage = decodeStorage(b.data.subarray(start, stop), b.dtype, `${path}[${i}]`);
    const elements = storage.length;
    if (trailing === 0 ? elements !== 0 : elements % trailing !== 0) {
      throw new WireDecodeError(
        `${elements} elements do not fill whole rows of trailing shape [${b.trailingShape}]`,
        `${path}[${i}]`,
      );
    }
    const lead = trailing === 0 ? 0 : elements / trailing;
    out.push(TensorData.fromTyped(storage, [lead, ...b.trailingShape]));
  }
  return out;
}

function decodeRecord(
  r: BinaryReader,
  end: number,
  path: string,
): Array<Record<string, TensorData>> {
  const fields: Array<[string, DecodedBatched]> = [];
  let numDatums = 0;
  while (r.pos < end) {
    const [f, wt] = r.tag();
    if (f === 2) {
      const e = subMessageEnd(r, wt, `${path}.fields`);
      fields.push(
        readMapEntry(
          r,
          e,
          `${path}.fields`,
          (vwt, k) => decodeBatched(r, subMessageEnd(r, vwt, `${path}.${k}`), `${path}.${k}`),
          () => ({ data: new Uint8Array(0), offsets: [0], dtype: 1, trailingShape: [] }),
        ),
      );
    } else if (f === 3) {
      expectWireType(wt, WireType.Varint, `${path}.num_datums`);
      numDatums = readInt64(r, `${path}.num_datums`);
    } else r.skip(wt, f);
  }
  const n = numDatums > 0 ? numDatums : Math.max(0, (fields[0]?.[1].offsets.length ?? 1) - 1);
  // Check counts before allocating anything sized by them (the count comes off the wire).
  for (const [key, b] of fields) {
    if (b.offsets.length !== n + 1) {
      throw new WireDecodeError(
        `offsets has ${b.offsets.length} entries, expected num_datums + 1 = ${n + 1}`,
        `${path}.${key}.offsets`,
      );
    }
  }
  if (fields.length === 0 && n > MAX_FIELDLESS_DATUMS) {
    throw new WireDecodeError(`num_datums ${n} is implausibly large`, `${path}.num_datums`);
  }
  const rows: Array<Record<string, TensorData>> = Array.from({ length: n }, () => ({}));
  for (const [key, b] of fields) {
    splitBatched(b, n, `${path}.${key}`).forEach((t, i) => {
      rows[i]![key] = t;
    });
  }
  return rows;
}

/**
 * Decode a protobuf `ForwardBackwardOutput` (client side): splits each `BatchedTensor` by its int64
 * byte offsets, widens INT32 and BFLOAT16, concatenates the `ArrayRecord`s, and reports the output
 * type as the part after the last `:` (`"ArrayRecord"` when empty).
 * @throws APIResponseValidationError naming the field path.
 */
export function decodeForwardBackwardOutput(
  bytes: Uint8Array,
  request?: string,
): ForwardBackwardOutput {
  try {
    return wrapDecode("ForwardBackwardOutput", bytes, (r) => {
      let type = "";
      const lossFnOutputs: Array<Record<string, TensorData>> = [];
      const metrics: Record<string, number> = {};
      let records = 0;
      while (r.pos < r.len) {
        const [f, wt] = r.tag();
        if (f === 1) {
          expectWireType(wt, WireType.LengthDelimited, "loss_fn_output_type");
          type = r.string();
        } else if (f === 2) {
          const path = `loss_fn_outputs[${records++}]`;
          for (const row of decodeRecord(r, subMessageEnd(r, wt, path), path)) {
            lossFnOutputs.push(row);
          }
        } else if (f === 3) {
          const [k, v] = readDoubleEntry(r, wt, "metrics");
          metrics[k] = v;
        } else r.skip(wt, f);
      }
      const shortType = type.slice(type.lastIndexOf(":") + 1);
      return { lossFnOutputType: shortType || "ArrayRecord", lossFnOutputs, metrics };
    });
  } catch (e) {
    throw toResponseError(e, request);
  }
}

function toResponseError(e: unknown, request: string | undefined): unknown {
  if (!(e instanceof WireDecodeError)) return e;
  const where = request ? `${request}: ` : "";
  return new APIResponseValidationError(`${where}${e.message}`, request ? { request } : {});
}

// ---------------------------------------------------------------------------------------------
// SampleResponse

function sequenceSize(s: SampledSequence): number {
  let n = 0;
  if (s.stopReason === "length") n += tagSize(1) + 1;
  if (s.tokens.length > 0) n += delimitedSize(2, s.tokens.length * 4);
  if (s.logprobs !== undefined) n += delimitedSize(3, s.logprobs.length * 4);
  return n;
}

interface TopkMatrix {
  tokenIds: Int32Array;
  logprobs: Float32Array;
  k: number;
  rows: number;
}

function topkMatrix(rows: NonNullable<SampleResponse["topkPromptLogprobs"]>): TopkMatrix {
  let k = 0;
  for (const row of rows) if (row && row.length > k) k = row.length;
  const tokenIds = new Int32Array(rows.length * k);
  const logprobs = new Float32Array(rows.length * k).fill(SPARSE_SENTINEL_LOGPROB);
  rows.forEach((row, i) => {
    row?.forEach(([tok, lp], j) => {
      tokenIds[i * k + j] = tok;
      logprobs[i * k + j] = lp;
    });
  });
  return { tokenIds, logprobs, k, rows: rows.length };
}

function topkSize(m: TopkMatrix): number {
  let n = 0;
  if (m.tokenIds.length > 0) n += delimitedSize(1, m.tokenIds.byteLength);
  if (m.logprobs.length > 0) n += delimitedSize(2, m.logprobs.byteLength);
  if (m.k > 0) n += tagSize(3) + varintSize(m.k);
  if (m.rows > 0) n += tagSize(4) + varintSize(m.rows);
  return n;
}

/**
 * Encode a `SampleResponse` (server side). Missing prompt logprobs (`null`) become NaN; top-k rows
 * are padded to the widest row with the `(0, -99999.0)` sentinel, and `null` rows are all sentinel.
 */
export function encodeSampleResponse(res: SampleResponse): Uint8Array {
  const seqSizes = res.sequences.map(sequenceSize);
  const promptLp = res.promptLogprobs
    ? Float32Array.from(res.promptLogprobs, (x) => (x === null ? Number.NaN : x))
    : undefined;
  const topk = res.topkPromptLogprobs ? topkMatrix(res.topkPromptLogprobs) : undefined;
  let size = 0;
  for (const s of seqSizes) size += delimitedSize(1, s);
  if (promptLp) size += delimitedSize(2, promptLp.byteLength);
  if (topk) size += delimitedSize(3, topkSize(topk));
  if (res.promptCacheHitTokens) size += tagSize(4) + varintSize(res.promptCacheHitTokens);

  const w = new SizedWriter(size);
  res.sequences.forEach((s, i) => {
    w.tag(1, WireType.LengthDelimited).varint(seqSizes[i]!);
    if (s.stopReason === "length") w.tag(1, WireType.Varint).varint(1);
    if (s.tokens.length > 0) w.tag(2, WireType.LengthDelimited).typed32(Int32Array.from(s.tokens));
    if (s.logprobs !== undefined) {
      w.tag(3, WireType.LengthDelimited).typed32(Float32Array.from(s.logprobs));
    }
  });
  if (promptLp) w.tag(2, WireType.LengthDelimited).typed32(promptLp);
  if (topk) {
    w.tag(3, WireType.LengthDelimited).varint(topkSize(topk));
    if (topk.tokenIds.length > 0) w.tag(1, WireType.LengthDelimited).typed32(topk.tokenIds);
    if (topk.logprobs.length > 0) w.tag(2, WireType.LengthDelimited).typed32(topk.logprobs);
    if (topk.k > 0) w.tag(3, WireType.Varint).varint(topk.k);
    if (topk.rows > 0) w.tag(4, WireType.Varint).varint(topk.rows);
  }
  if (res.promptCacheHitTokens) w.tag(4, WireType.Varint).varint(res.promptCacheHitTokens);
  return w.finish();
}

function decodeSequence(r: BinaryReader, end: number, path: string): SampledSequence {
  let stop = 0;
  let tokens: number[] = [];
  let logprobs: number[] | undefined;
  while (r.pos < end) {
    const [f, wt] = r.tag();
    if (f === 1) {
      expectWireType(wt, WireType.Varint, `${path}.stop_reason`);
      stop = r.int32();
    } else if (f === 2) {
      expectWireType(wt, WireType.LengthDelimited, `${path}.tokens`);
      tokens = toNumberList(int32View(r.bytes(), `${path}.tokens`));
    } else if (f === 3) {
      expectWireType(wt, WireType.LengthDelimited, `${path}.logprobs`);
      logprobs = toNumberList(float32View(r.bytes(), `${path}.logprobs`));
    } else r.skip(wt, f);
  }
  if (stop !== 0 && stop !== 1) {
    throw new WireDecodeError(`unknown stop_reason ${stop}`, `${path}.stop_reason`);
  }
  const seq: SampledSequence = { stopReason: stop === 1 ? "length" : "stop", tokens };
  if (logprobs !== undefined) seq.logprobs = logprobs;
  return seq;
}

function decodeTopk(r: BinaryReader, end: number): Array<Array<[number, number]> | null> {
  let ids: Int32Array = new Int32Array(0);
  let lps: Float32Array = new Float32Array(0);
  let k = 0;
  let rows = 0;
  while (r.pos < end) {
    const [f, wt] = r.tag();
    if (f === 1) {
      expectWireType(wt, WireType.LengthDelimited, "topk_prompt_logprobs.token_ids");
      ids = int32View(r.bytes(), "topk_prompt_logprobs.token_ids");
    } else if (f === 2) {
      expectWireType(wt, WireType.LengthDelimited, "topk_prompt_logprobs.logprobs");
      lps = float32View(r.bytes(), "topk_prompt_logprobs.logprobs");
    } else if (f === 3) {
      expectWireType(wt, WireType.Varint, "topk_prompt_logprobs.k");
      k = r.uint32();
    } else if (f === 4) {
      expectWireType(wt, WireType.Varint, "topk_prompt_logprobs.prompt_length");
      rows = r.uint32();
    } else r.skip(wt, f);
  }
  if (ids.length !== rows * k || lps.length !== rows * k) {
    throw new WireDecodeError(
      `expected ${rows} x ${k} token ids and logprobs, got ${ids.length} and ${lps.length}`,
      "topk_prompt_logprobs",
    );
  }
  const out: Array<Array<[number, number]> | null> = [];
  for (let i = 0; i < rows; i++) {
    const isSentinel = (j: number) =>
      ids[i * k + j] === SPARSE_SENTINEL_TOKEN && lps[i * k + j] === SPARSE_SENTINEL_LOGPROB;
    if (k === 0 || isSentinel(0)) {
      out.push(null);
      continue;
    }
    let width = k;
    while (width > 0 && isSentinel(width - 1)) width--;
    const row: Array<[number, number]> = [];
    for (let j = 0; j < width; j++) row.push([ids[i * k + j]!, lps[i * k + j]!]);
    out.push(row);
  }
  return out;
}

/**
 * Decode a protobuf `SampleResponse` (client side). NaN prompt logprobs become `null`; top-k rows
 * starting with the `(0, -99999.0)` sentinel become `null`, trailing sentinels are trimmed.
 * @throws APIResponseValidationError naming the field path.
 */
export function decodeSampleResponse(bytes: Uint8Array, request?: string): SampleResponse {
  try {
    return wrapDecode("SampleResponse", bytes, (r) => {
      const res: SampleResponse = { sequences: [], promptCacheHitTokens: 0 };
      while (r.pos < r.len) {
        const [f, wt] = r.tag();
        if (f === 1) {
          const path = `sequences[${res.sequences.length}]`;
          res.sequences.push(decodeSequence(r, subMessageEnd(r, wt, path), path));
        } else if (f === 2) {
          expectWireType(wt, WireType.LengthDelimited, "prompt_logprobs");
          const lp = float32View(r.bytes(), "prompt_logprobs");
          res.promptLogprobs = toNullableNumberList(lp);
        } else if (f === 3) {
          res.topkPromptLogprobs = decodeTopk(r, subMessageEnd(r, wt, "topk_prompt_logprobs"));
        } else if (f === 4) {
          expectWireType(wt, WireType.Varint, "prompt_cache_hit_tokens");
          res.promptCacheHitTokens = r.int32();
        } else r.skip(wt, f);
      }
      return res;
    });
  } catch (e) {
    throw toResponseError(e, request);
  }
}

// ---------------------------------------------------------------------------------------------
// SamplingParams (in the schema; the 0.25.0 SDK still sends sampling requests as JSON)

/**
 * Encode `SamplingParams`: every set field is written (they are proto3 `optional`), stop strings
 * and stop token ids go in their oneof messages.
 */
export function encodeSamplingParams(p: SamplingParams): Uint8Array {
  const stop =
    p.stop === undefined ? undefined : typeof p.stop === "string" ? [p.stop] : [...p.stop];
  const stopIsTokens = stop !== undefined && stop.length > 0 && typeof stop[0] === "number";
  let stopBody = 0;
  if (stop !== undefined) {
    if (stopIsTokens) {
      let packed = 0;
      for (const t of stop as number[]) packed += varintSize(t);
      stopBody = stop.length > 0 ? delimitedSize(1, packed) : 0;
    } else {
      for (const s of stop as string[]) stopBody += delimitedSize(1, utf8Size(s));
    }
  }
  let size = 0;
  if (p.maxTokens !== undefined) size += tagSize(1) + varintSize(p.maxTokens);
  if (p.seed !== undefined) size += tagSize(2) + varintSize(p.seed);
  if (p.temperature !== undefined) size += tagSize(3) + 4;
  if (p.topK !== undefined) size += tagSize(4) + varintSize(p.topK);
  if (p.topP !== undefined) size += tagSize(5) + 4;
  if (stop !== undefined) size += delimitedSize(stopIsTokens ? 7 : 6, stopBody);

  const w = new SizedWriter(size);
  if (p.maxTokens !== undefined) w.tag(1, WireType.Varint).varint(p.maxTokens);
  if (p.seed !== undefined) w.tag(2, WireType.Varint).varint(p.seed);
  if (p.temperature !== undefined) w.tag(3, WireType.Bit32).float(p.temperature);
  if (p.topK !== undefined) w.tag(4, WireType.Varint).varint(p.topK);
  if (p.topP !== undefined) w.tag(5, WireType.Bit32).float(p.topP);
  if (stop !== undefined) {
    w.tag(stopIsTokens ? 7 : 6, WireType.LengthDelimited).varint(stopBody);
    if (stopIsTokens) {
      if (stop.length > 0) {
        let packed = 0;
        for (const t of stop as number[]) packed += varintSize(t);
        w.tag(1, WireType.LengthDelimited).varint(packed);
        for (const t of stop as number[]) w.varint(t);
      }
    } else {
      for (const s of stop as string[]) w.tag(1, WireType.LengthDelimited).string(s, utf8Size(s));
    }
  }
  return w.finish();
}

/**
 * Decode `SamplingParams`; absent fields stay unset (apply the defaults of `samplingParamsToJson`
 * when needed).
 * @throws TinkerValidationError naming the field.
 */
export function decodeSamplingParams(bytes: Uint8Array): SamplingParams {
  try {
    return wrapDecode("SamplingParams", bytes, (r) => {
      const p: SamplingParams = {};
      while (r.pos < r.len) {
        const [f, wt] = r.tag();
        switch (f) {
          case 1:
            expectWireType(wt, WireType.Varint, "max_tokens");
            p.maxTokens = r.int32();
            break;
          case 2: {
            expectWireType(wt, WireType.Varint, "seed");
            const seed = BigInt(r.uint64());
            if (seed > BigInt(Number.MAX_SAFE_INTEGER)) {
              throw new WireDecodeError(`seed ${seed} is larger than 2^53 - 1`, "seed");
            }
            p.seed = Number(seed);
            break;
          }
          case 3:
            expectWireType(wt, WireType.Bit32, "temperature");
            p.temperature = r.float();
            break;
          case 4:
            expectWireType(wt, WireType.Varint, "top_k");
            p.topK = r.int32();
            break;
          case 5:
            expectWireType(wt, WireType.Bit32, "top_p");
            p.topP = r.float();
            break;
          case 6: {
            const end = subMessageEnd(r, wt, "stop_strs");
            const values: string[] = [];
            while (r.pos < end) {
              const [g, gwt] = r.tag();
              if (g === 1) {
                expectWireType(gwt, WireType.LengthDelimited, "stop_strs.values");
                values.push(r.string());
              } else r.skip(gwt, g);
            }
            p.stop = values;
            break;
          }
          case 7: {
            const end = subMessageEnd(r, wt, "stop_tokens");
            const values: number[] = [];
            while (r.pos < end) {
              const [g, gwt] = r.tag();
              if (g === 1 && gwt === WireType.LengthDelimited) {
                const e = r.uint32() + r.pos;
                while (r.pos < e) values.push(r.int32());
              } else if (g === 1) {
                expectWireType(gwt, WireType.Varint, "stop_tokens.values");
                values.push(r.int32());
              } else r.skip(gwt, g);
            }
            p.stop = values;
            break;
          }
          default:
            r.skip(wt, f);
        }
      }
      return p;
    });
  } catch (e) {
    if (e instanceof WireDecodeError) throw new TinkerValidationError(e.message, e.path);
    throw e;
  }
}

import { open, readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../../../fs/atomic.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "./dtype.js";
import { ModelFileError } from "./errors.js";

/** Float formats the loader widens to float32. */
export type FloatDtype = "F32" | "F16" | "BF16";

/** A tensor read from a checkpoint, widened to float32. `dtype` is the format it was stored in. */
export interface LoadedTensor {
  dtype: FloatDtype;
  shape: number[];
  data: Float32Array;
}

/** A float32 tensor to write. `shape`'s product must equal `data.length`. */
export interface TensorToWrite {
  shape: readonly number[];
  data: Float32Array;
}

/** One entry of a safetensors header. Offsets are relative to the start of the data section. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  dataOffsets: [number, number];
}

/** The parsed header of a safetensors file. */
export interface SafetensorsHeader {
  /** Byte offset of the data section in the file (8 + header length). */
  dataStart: number;
  /** `__metadata__` (string to string), empty when absent. */
  metadata: Record<string, string>;
  tensors: Map<string, SafetensorsEntry>;
}

/** Bytes per element of every dtype the safetensors format defines. */
const DTYPE_SIZES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

const MAX_HEADER_BYTES = 100_000_000;
/** Largest single read (Node rejects reads over 2 GiB; smaller chunks also bound scratch memory). */
const MAX_IO_BYTES = 1 << 26;

function isFloatDtype(d: string): d is FloatDtype {
  return d === "F32" || d === "F16" || d === "BF16";
}

/**
 * Parse and validate a safetensors header. `headerBytes` is the JSON text, `dataLength` the size of
 * the data section. Checks dtypes, shapes, that every tensor's byte range lies in the data section
 * and has exactly dtype size x elements, and that the ranges tile the section without holes or
 * overlaps (as the format requires).
 */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  dataLength: number,
  file = "<buffer>",
): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (err) {
    throw new ModelFileError(
      file,
      `safetensors header is not valid UTF-8 JSON (${(err as Error).message})`,
    );
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ModelFileError(file, "safetensors header must be a JSON object");
  }
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
        throw new ModelFileError(file, "__metadata__ must be an object of strings", "__metadata__");
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") {
          throw new ModelFileError(
            file,
            `__metadata__.${k} must be a string, got ${typeof v}`,
            "__metadata__",
          );
        }
        metadata[k] = v;
      }
      continue;
    }
    const bad = (what: string): never => {
      throw new ModelFileError(file, `tensor "${name}": ${what}`, name);
    };
    if (raw === null || typeof raw !== "object") bad("entry must be an object");
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e.dtype !== "string" || !(e.dtype in DTYPE_SIZES)) {
      bad(
        `unknown dtype ${JSON.stringify(e.dtype)} (safetensors dtypes: ${Object.keys(DTYPE_SIZES).join(", ")})`,
      );
    }
    const dtype = e.dtype as string;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`shape must be an array of non-negative integers, got ${JSON.stringify(e.shape)}`);
    }
    const shape = e.shape as number[];
    const offs = e.data_offsets;
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      (offs[0] as number) > (offs[1] as number)
    ) {
      bad(`data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (end > dataLength) {
      bad(
        `data_offsets [${begin}, ${end}] run past the end of the data section (${dataLength} bytes); the file is truncated or corrupt`,
      );
    }
    const numel = shape.reduce((a, b) => a * b, 1);
    const need = numel * (DTYPE_SIZES[dtype] as number);
    if (end - begin !== need) {
      bad(
        `data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} needs ${need}`,
      );
    }
    tensors.set(name, { dtype, shape, dataOffsets: [begin, end] });
  }
  const ranges = [...tensors.entries()].sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0]);
  let cursor = 0;
  for (const [name, t] of ranges) {
    const [begin, end] = t.dataOffsets;
    if (begin < cursor)
      throw new ModelFileError(file, `tensor "${name}" overlaps the previous tensor's bytes`, name);
    if (begin > cursor)
      throw new ModelFileError(
        file,
        `unreferenced bytes ${cursor}..${begin} before tensor "${name}"`,
        name,
      );
    cursor = end;
  }
  if (cursor !== dataLength) {
    throw new ModelFileError(
      file,
      `data section has ${dataLength} bytes but tensors cover only ${cursor}`,
    );
  }
  return { dataStart: 8 + headerBytes.length, metadata, tensors };
}

function headerLengthOf(prefix: Uint8Array, total: number, file: string): number {
  if (total < 8)
    throw new ModelFileError(
      file,
      `only ${total} bytes; a safetensors file starts with an 8-byte header length`,
    );
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, total - 8))) {
    throw new ModelFileError(
      file,
      `header length ${n} exceeds the file size (${total} bytes) or the 100 MB limit; not a safetensors file?`,
    );
  }
  return Number(n);
}

/** Read and validate only the header of a safetensors file (cheap, does not touch tensor data). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const fh = await openOrExplain(path);
  try {
    const { size } = await fh.stat();
    const prefix = new Uint8Array(8);
    if (size >= 8) await readExactly(fh, prefix, 0, path);
    const n = headerLengthOf(prefix, size, path);
    const header = new Uint8Array(n);
    await readExactly(fh, header, 8, path);
    return parseSafetensorsHeader(header, size - 8 - n, path);
  } finally {
    await fh.close();
  }
}

type FileHandle = Awaited<ReturnType<typeof open>>;

async function openOrExplain(path: string): Promise<FileHandle> {
  try {
    return await open(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw new ModelFileError(path, "file not found");
    throw err;
  }
}

async function readExactly(
  fh: FileHandle,
  into: Uint8Array,
  position: number,
  file: string,
): Promise<void> {
  let off = 0;
  while (off < into.byteLength) {
    const want = Math.min(into.byteLength - off, MAX_IO_BYTES);
    const { bytesRead } = await fh.read(into, off, want, position + off);
    if (bytesRead === 0)
      throw new ModelFileError(file, `unexpected end of file at byte ${position + off}`);
    off += bytesRead;
  }
}

/** Options for reading tensors. */
export interface ReadSafetensorsOptions {
  /** Load only tensors for which this returns true (others are not read at all). */
  filter?: (name: string) => boolean;
  /** Largest read (and 16-bit scratch buffer) in bytes; rounded down to even. Default 64 MiB. */
  chunkBytes?: number;
}

function widen(dtype: FloatDtype, bytes: Uint8Array, numel: number, out: Float32Array): void {
  if (dtype === "F32") {
    new Uint8Array(out.buffer, out.byteOffset, numel * 4).set(bytes);
  } else {
    // `bytes` may be unaligned within its buffer; copy to an aligned view first when needed.
    const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
    const halves = new Uint16Array(aligned.buffer, aligned.byteOffset, numel);
    if (dtype === "BF16") bf16ToF32(halves, out);
    else f16ToF32(halves, out);
  }
}

function checkLoadable(name: string, entry: SafetensorsEntry, file: string): FloatDtype {
  if (!isFloatDtype(entry.dtype)) {
    throw new ModelFileError(
      file,
      `tensor "${name}" has dtype ${entry.dtype}; the engine loads F32, F16 and BF16`,
      name,
    );
  }
  return entry.dtype;
}

/**
 * Read every (selected) tensor of a safetensors file, widening F16/BF16 to float32. F32 data is
 * read straight into the result arrays; 16-bit data is read in chunks of at most 64 MiB through
 * one scratch buffer, so peak memory is the float32 result plus 64 MiB.
 */
export async function readSafetensors(
  path: string,
  opts: ReadSafetensorsOptions = {},
): Promise<Map<string, LoadedTensor>> {
  const header = await readSafetensorsHeader(path);
  const out = new Map<string, LoadedTensor>();
  const fh = await openOrExplain(path);
  let scratch: Uint8Array | undefined;
  const step = Math.max(2, Math.floor((opts.chunkBytes ?? MAX_IO_BYTES) / 2) * 2);
  try {
    for (const [name, entry] of header.tensors) {
      if (opts.filter && !opts.filter(name)) continue;
      const dtype = checkLoadable(name, entry, path);
      const numel = entry.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(numel);
      const [begin, end] = entry.dataOffsets;
      if (dtype === "F32") {
        await readExactly(fh, new Uint8Array(data.buffer), header.dataStart + begin, path);
      } else {
        const total = end - begin;
        const size = Math.min(step, total);
        if (!scratch || scratch.byteLength < size) scratch = new Uint8Array(size);
        for (let off = 0; off < total; off += step) {
          const n = Math.min(step, total - off);
          const chunk = scratch.subarray(0, n);
          await readExactly(fh, chunk, header.dataStart + begin + off, path);
          widen(dtype, chunk, n / 2, data.subarray(off / 2, (off + n) / 2));
        }
      }
      out.set(name, { dtype, shape: [...entry.shape], data });
    }
  } finally {
    await fh.close();
  }
  return out;
}

/** Decode a whole safetensors file held in memory. */
export function decodeSafetensors(
  bytes: Uint8Array,
  opts: ReadSafetensorsOptions & { source?: string } = {},
): { metadata: Record<string, string>; tensors: Map<string, LoadedTensor> } {
  const file = opts.source ?? "<buffer>";
  const n = headerLengthOf(bytes, bytes.byteLength, file);
  const header = parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.byteLength - 8 - n, file);
  const tensors = new Map<string, LoadedTensor>();
  for (const [name, entry] of header.tensors) {
    if (opts.filter && !opts.filter(name)) continue;
    const dtype = checkLoadable(name, entry, file);
    const numel = entry.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(numel);
    const [begin, end] = entry.dataOffsets;
    widen(dtype, bytes.subarray(header.dataStart + begin, header.dataStart + end), numel, data);
    tensors.set(name, { dtype, shape: [...entry.shape], data });
  }
  return { metadata: header.metadata, tensors };
}

/** Options for writing safetensors. */
export interface WriteSafetensorsOptions {
  /** Storage format; float32 values are rounded to nearest-even for 16-bit formats. Default F32. */
  dtype?: FloatDtype;
}

function entriesOf(
  tensors: ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>,
): [string, TensorToWrite][] {
  const list = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  return list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/**
 * Serialize tensors to safetensors as a sequence of chunks (header first, then each tensor's
 * bytes), so large checkpoints are never copied into one buffer. Tensors are stored in name order;
 * the header is padded with spaces to a multiple of 8 bytes, as the reference implementation does.
 */
export function encodeSafetensorsChunks(
  tensors: ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>,
  metadata?: Readonly<Record<string, string>>,
  opts: WriteSafetensorsOptions = {},
): Uint8Array[] {
  const dtype = opts.dtype ?? "F32";
  const elemSize = dtype === "F32" ? 4 : 2;
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string")
        throw new ModelFileError("<safetensors>", `metadata "${k}" must be a string`, k);
    }
    header.__metadata__ = metadata;
  }
  const list = entriesOf(tensors);
  let offset = 0;
  for (const [name, t] of list) {
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new ModelFileError(
        "<safetensors>",
        `tensor "${name}": shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`,
        name,
      );
    }
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) {
      throw new ModelFileError(
        "<safetensors>",
        `tensor "${name}": shape ${JSON.stringify(t.shape)} has ${numel} elements but data has ${t.data.length}`,
        name,
      );
    }
    const size = numel * elemSize;
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(json.length), true);
  const chunks: Uint8Array[] = [prefix, json];
  for (const [, t] of list) {
    if (dtype === "F32")
      chunks.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    else {
      const h = dtype === "BF16" ? f32ToBf16(t.data) : f32ToF16(t.data);
      chunks.push(new Uint8Array(h.buffer, h.byteOffset, h.byteLength));
    }
  }
  return chunks;
}

/** Serialize tensors to one safetensors buffer (see {@link encodeSafetensorsChunks}). */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>,
  metadata?: Readonly<Record<string, string>>,
  opts: WriteSafetensorsOptions = {},
): Uint8Array {
  const chunks = encodeSafetensorsChunks(tensors, metadata, opts);
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/**
 * Write tensors to a safetensors file atomically (temp file, fsync, rename): a crash leaves the
 * previous file or the complete new one. Stored as F32 unless `opts.dtype` says BF16 or F16.
 */
export async function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>,
  metadata?: Readonly<Record<string, string>>,
  opts: WriteSafetensorsOptions = {},
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensorsChunks(tensors, metadata, opts));
}

/** Parsed `model.safetensors.index.json`. */
export interface SafetensorsIndex {
  metadata: Record<string, unknown>;
  /** Tensor name -> shard file name (relative to the index's directory). */
  weightMap: Map<string, string>;
}

/** Read and validate a sharded checkpoint's index file. */
export async function readSafetensorsIndex(indexPath: string): Promise<SafetensorsIndex> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(indexPath, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw new ModelFileError(indexPath, "file not found");
    throw new ModelFileError(indexPath, `not valid JSON (${(err as Error).message})`);
  }
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (wm === null || typeof wm !== "object" || Array.isArray(wm)) {
    throw new ModelFileError(
      indexPath,
      `"weight_map" must be an object mapping tensor names to shard files`,
      "weight_map",
    );
  }
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof shard !== "string" || shard.includes("..") || shard.startsWith("/")) {
      throw new ModelFileError(
        indexPath,
        `weight_map["${name}"] must be a shard file name in the same folder, got ${JSON.stringify(shard)}`,
        name,
      );
    }
    weightMap.set(name, shard);
  }
  const metadata = (json as { metadata?: Record<string, unknown> }).metadata ?? {};
  return { metadata, weightMap };
}

/**
 * Read a sharded checkpoint: every shard the index names, checking that each tensor is in the shard
 * the index says (and nowhere else).
 */
export async function readShardedSafetensors(
  indexPath: string,
  opts: ReadSafetensorsOptions = {},
): Promise<Map<string, LoadedTensor>> {
  const index = await readSafetensorsIndex(indexPath);
  const dir = dirname(indexPath);
  const shards = new Map<string, string[]>();
  for (const [name, shard] of index.weightMap) {
    if (opts.filter && !opts.filter(name)) continue;
    const names = shards.get(shard) ?? [];
    names.push(name);
    shards.set(shard, names);
  }
  const out = new Map<string, LoadedTensor>();
  for (const [shard, names] of [...shards.entries()].sort()) {
    const wanted = new Set(names);
    const path = join(dir, shard);
    const tensors = await readSafetensors(path, { filter: (n) => wanted.has(n) });
    for (const name of names) {
      const t = tensors.get(name);
      if (!t)
        throw new ModelFileError(
          path,
          `index ${indexPath} places tensor "${name}" in this shard, but it is not there`,
          name,
        );
      out.set(name, t);
    }
  }
  return out;
}

/**
 * Read the weights of a model folder: `model.safetensors.index.json` (sharded) when present, else
 * `model.safetensors`.
 */
export async function readSafetensorsFolder(
  dir: string,
  opts: ReadSafetensorsOptions = {},
): Promise<Map<string, LoadedTensor>> {
  const index = join(dir, "model.safetensors.index.json");
  if (await fileExists(index)) return readShardedSafetensors(index, opts);
  const single = join(dir, "model.safetensors");
  if (await fileExists(single)) return readSafetensors(single, opts);
  throw new ModelFileError(
    dir,
    "no model.safetensors or model.safetensors.index.json in this folder (only safetensors checkpoints are supported, not pytorch_model.bin)",
  );
}

async function fileExists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

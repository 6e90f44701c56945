/**
 * Low-level protobuf helpers shared by the message codecs in `proto.ts`: a writer that fills a
 * buffer whose size was computed up front (one allocation, no fork/join copies), size arithmetic,
 * and typed-array views over received bytes.
 */

import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

export { BinaryReader, WireType };

/** True on every platform Node ships for; the raw tensor bytes on the wire are little-endian. */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const utf8 = new TextEncoder();

/** Raised inside the decoders; the public functions turn it into the right typed error. */
export class WireDecodeError extends Error {
  readonly path: string;
  constructor(message: string, path: string) {
    super(message);
    this.path = path;
  }
}

/** Bytes of an unsigned varint holding `n` (a non-negative safe integer). */
export function varintSize(n: number): number {
  if (n < 0) return 10;
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Bytes of a tag for `fieldNo`. */
export function tagSize(fieldNo: number): number {
  return varintSize(fieldNo << 3);
}

/** Bytes of a length-delimited field (tag + length + payload). */
export function delimitedSize(fieldNo: number, payload: number): number {
  return tagSize(fieldNo) + varintSize(payload) + payload;
}

/** UTF-8 length of a string. */
export function utf8Size(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/** Payload bytes of a packed repeated int64 field. */
export function packedInt64Size(values: readonly number[]): number {
  let n = 0;
  for (const v of values) n += varintSize(v);
  return n;
}

/** A protobuf writer over a buffer of exactly the size the caller computed. */
export class SizedWriter {
  readonly buf: Uint8Array;
  private readonly view: DataView;
  pos = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }

  /** The written bytes; throws if the precomputed size was wrong (a codec bug). */
  finish(): Uint8Array {
    if (this.pos !== this.buf.length) {
      throw new Error(`protobuf size mismatch: wrote ${this.pos} of ${this.buf.length} bytes`);
    }
    return this.buf;
  }

  tag(fieldNo: number, wireType: WireType): this {
    return this.varint((fieldNo << 3) | wireType);
  }

  /** Unsigned varint of a safe integer; negative values are written as 10-byte two's complement. */
  varint(n: number): this {
    if (n < 0) return this.negativeVarint(n);
    const buf = this.buf;
    while (n >= 128) {
      buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    buf[this.pos++] = n;
    return this;
  }

  private negativeVarint(n: number): this {
    let v = BigInt.asUintN(64, BigInt(n));
    for (let i = 0; i < 9; i++) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
    return this;
  }

  float(x: number): this {
    this.view.setFloat32(this.pos, x, true);
    this.pos += 4;
    return this;
  }

  double(x: number): this {
    this.view.setFloat64(this.pos, x, true);
    this.pos += 8;
    return this;
  }

  /** Length prefix then the raw bytes. */
  bytes(b: Uint8Array): this {
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  string(s: string, byteLength: number): this {
    this.varint(byteLength);
    const { written } = utf8.encodeInto(s, this.buf.subarray(this.pos, this.pos + byteLength));
    this.pos += written;
    return this;
  }

  /** Length prefix then the little-endian bytes of a float32 or int32 array. */
  typed32(a: Float32Array | Int32Array): this {
    return this.varint(a.byteLength).rawTyped32(a);
  }

  /** The little-endian bytes of a float32 or int32 array, without a length prefix. */
  rawTyped32(a: Float32Array | Int32Array): this {
    if (LITTLE_ENDIAN) {
      this.buf.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), this.pos);
      this.pos += a.byteLength;
    } else if (a instanceof Float32Array) {
      for (const x of a) {
        this.view.setFloat32(this.pos, x, true);
        this.pos += 4;
      }
    } else {
      for (const x of a) {
        this.view.setInt32(this.pos, x, true);
        this.pos += 4;
      }
    }
    return this;
  }

  /** Length prefix then each int32 widened to a little-endian int64 (sign-extended). */
  int64FromInt32(a: Int32Array): this {
    return this.varint(a.length * 8).rawInt64FromInt32(a);
  }

  /** Each int32 widened to a little-endian int64, without a length prefix. */
  rawInt64FromInt32(a: Int32Array): this {
    const n = a.length;
    const at = this.buf.byteOffset + this.pos;
    if (LITTLE_ENDIAN) {
      // Fill an aligned int32 view directly (lo, hi pairs), or a scratch array copied in once.
      const aligned = (at & 3) === 0;
      const out = aligned ? new Int32Array(this.buf.buffer, at, 2 * n) : new Int32Array(2 * n);
      for (let i = 0, j = 0; i < n; i++, j += 2) {
        const v = a[i]!;
        out[j] = v;
        out[j + 1] = v >> 31;
      }
      if (!aligned) this.buf.set(new Uint8Array(out.buffer), this.pos);
    } else {
      for (let i = 0; i < n; i++) {
        this.view.setInt32(this.pos + 8 * i, a[i]!, true);
        this.view.setInt32(this.pos + 8 * i + 4, a[i]! >> 31, true);
      }
    }
    this.pos += 8 * n;
    return this;
  }

  /** Length prefix then safe integers as little-endian int64. */
  int64FromNumbers(values: ArrayLike<number>): this {
    this.varint(values.length * 8);
    for (let i = 0; i < values.length; i++) {
      this.view.setBigInt64(this.pos, BigInt(values[i]!), true);
      this.pos += 8;
    }
    return this;
  }

  /** A packed repeated int64 field body (length prefix then varints). */
  packedInt64(values: readonly number[]): this {
    this.varint(packedInt64Size(values));
    for (const v of values) this.varint(v);
    return this;
  }
}

function checkMultiple(bytes: Uint8Array, size: number, path: string): void {
  if (bytes.byteLength % size !== 0) {
    throw new WireDecodeError(
      `${bytes.byteLength} bytes is not a whole number of ${size}-byte elements`,
      path,
    );
  }
}

/**
 * A copy of `bytes` in a fresh ArrayBuffer of exactly its length. (`bytes.slice()` is not enough:
 * on a Node `Buffer` it returns a view into the shared allocation pool.)
 */
function ownCopy(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

/** A Float32Array over `bytes`: a view when 4-byte aligned, else a copy. */
export function float32View(bytes: Uint8Array, path: string): Float32Array {
  checkMultiple(bytes, 4, path);
  if (!LITTLE_ENDIAN) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(bytes.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
    return out;
  }
  if (bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }
  return new Float32Array(ownCopy(bytes).buffer);
}

/** An Int32Array over `bytes`: a view when 4-byte aligned, else a copy. */
export function int32View(bytes: Uint8Array, path: string): Int32Array {
  checkMultiple(bytes, 4, path);
  if (!LITTLE_ENDIAN) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Int32Array(bytes.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = dv.getInt32(i * 4, true);
    return out;
  }
  if (bytes.byteOffset % 4 === 0) {
    return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }
  return new Int32Array(ownCopy(bytes).buffer);
}

/**
 * Little-endian int64 values narrowed to an Int32Array (the SDK's storage for int64 tensors).
 * Values outside the int32 range are an error, not a silent wrap.
 */
export function int64ToInt32(bytes: Uint8Array, path: string): Int32Array {
  checkMultiple(bytes, 8, path);
  const n = bytes.byteLength / 8;
  const out = new Int32Array(n);
  if (LITTLE_ENDIAN) {
    const src = bytes.byteOffset % 4 === 0 ? bytes : ownCopy(bytes);
    const words = new Int32Array(src.buffer, src.byteOffset, 2 * n);
    for (let i = 0, j = 0; i < n; i++, j += 2) {
      const lo = words[j]!;
      if (words[j + 1] !== lo >> 31) {
        const v = new DataView(src.buffer, src.byteOffset).getBigInt64(j * 4, true);
        throw new WireDecodeError(`int64 value ${v} at index ${i} does not fit in int32`, path);
      }
      out[i] = lo;
    }
    return out;
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) {
    const lo = dv.getInt32(i * 8, true);
    if (dv.getInt32(i * 8 + 4, true) !== lo >> 31) {
      throw new WireDecodeError(
        `int64 value ${dv.getBigInt64(i * 8, true)} at index ${i} does not fit in int32`,
        path,
      );
    }
    out[i] = lo;
  }
  return out;
}

/** Little-endian int64 values as JS numbers (for offsets and shapes). */
export function int64ToNumbers(bytes: Uint8Array, path: string): number[] {
  checkMultiple(bytes, 8, path);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = new Array(bytes.byteLength / 8);
  for (let i = 0; i < out.length; i++) {
    const v = dv.getBigInt64(i * 8, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new WireDecodeError(`int64 value ${v} at index ${i} is not a safe integer`, path);
    }
    out[i] = Number(v);
  }
  return out;
}

/** bfloat16 values (the upper half of a float32) widened to float32. */
export function bfloat16ToFloat32(bytes: Uint8Array, path: string): Float32Array {
  checkMultiple(bytes, 2, path);
  const n = bytes.byteLength / 2;
  const bits = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    bits[i] = ((bytes[2 * i]! | (bytes[2 * i + 1]! << 8)) << 16) >>> 0;
  }
  return new Float32Array(bits.buffer);
}

/** Read an int64 varint as a safe JS number. */
export function readInt64(r: BinaryReader, path: string): number {
  const v = BigInt(r.int64());
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new WireDecodeError(`int64 value ${v} is not a safe integer`, path);
  }
  return Number(v);
}

/** Read a repeated int64 field that may arrive packed or as a single varint. */
export function readRepeatedInt64(
  r: BinaryReader,
  wireType: WireType,
  out: number[],
  path: string,
): void {
  if (wireType === WireType.LengthDelimited) {
    const end = r.uint32() + r.pos;
    while (r.pos < end) out.push(readInt64(r, path));
    if (r.pos !== end) throw new WireDecodeError("packed field overruns its length", path);
    return;
  }
  expectWireType(wireType, WireType.Varint, path);
  out.push(readInt64(r, path));
}

/** Fail unless a known field arrived with the wire type the schema says. */
export function expectWireType(actual: WireType, expected: WireType, path: string): void {
  if (actual !== expected) {
    throw new WireDecodeError(`wire type ${actual} where the schema has ${expected}`, path);
  }
}

/** The end offset of the length-delimited submessage the reader is positioned on. */
export function subMessageEnd(r: BinaryReader, wireType: WireType, path: string): number {
  expectWireType(wireType, WireType.LengthDelimited, path);
  const len = r.uint32();
  const end = r.pos + len;
  if (end > r.len) throw new WireDecodeError("submessage runs past the end of the buffer", path);
  return end;
}

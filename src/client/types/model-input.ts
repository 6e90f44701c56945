import { TinkerValidationError } from "../errors.js";
import { toNumberList } from "./number-lists.js";

/** A run of token ids. */
export interface EncodedTextChunk {
  readonly type: "encoded_text";
  readonly tokens: Int32Array;
}

/** Image bytes; the server computes its token count, `expectedTokens` lets the client know it. */
export interface ImageChunk {
  readonly type: "image";
  readonly data: Uint8Array;
  readonly format: "png" | "jpeg";
  readonly expectedTokens?: number;
}

/** An image referenced by path or URL (JSON requests only; not encodable in protobuf). */
export interface ImageAssetPointerChunk {
  readonly type: "image_asset_pointer";
  readonly format: "png" | "jpeg";
  readonly location: string;
  readonly expectedTokens?: number;
}

/** Serialized audio tokens ("TensorContainer"); length is read from its header. */
export interface DmelChunk {
  readonly type: "dmel";
  readonly dmel: Uint8Array;
}

export type ModelInputChunk = EncodedTextChunk | ImageChunk | ImageAssetPointerChunk | DmelChunk;

/** Build an `encoded_text` chunk (copies `tokens` into an `Int32Array` unless it already is one). */
export function encodedText(tokens: ArrayLike<number>): EncodedTextChunk {
  return { type: "encoded_text", tokens: toInt32(tokens, "tokens") };
}

/** The tokens the model reads: an immutable sequence of chunks. */
export class ModelInput {
  readonly chunks: readonly ModelInputChunk[];

  constructor(chunks: readonly ModelInputChunk[]) {
    this.chunks = chunks;
  }

  static empty(): ModelInput {
    return new ModelInput([]);
  }

  /** One `encoded_text` chunk holding `tokens`. */
  static fromInts(tokens: ArrayLike<number>): ModelInput {
    return new ModelInput([encodedText(tokens)]);
  }

  /** Every token id, in order. Throws if a non-text chunk is present. */
  toInts(): number[] {
    return toNumberList(this.toInt32Array());
  }

  /** Every token id as one `Int32Array` (no copy when there is a single text chunk). */
  toInt32Array(): Int32Array {
    if (this.chunks.length === 1 && this.chunks[0]!.type === "encoded_text") {
      return this.chunks[0]!.tokens;
    }
    let n = 0;
    for (const c of this.chunks) {
      // Checked before any length is read: an image's length may be unknown.
      if (c.type !== "encoded_text") {
        throw new TinkerValidationError(
          `ModelInput.toInts() needs text-only input, found a "${c.type}" chunk`,
          "chunks",
        );
      }
      n += c.tokens.length;
    }
    const out = new Int32Array(n);
    let at = 0;
    for (const c of this.chunks as readonly EncodedTextChunk[]) {
      out.set(c.tokens, at);
      at += c.tokens.length;
    }
    return out;
  }

  /** Number of tokens the model sees (images need `expectedTokens`). */
  get length(): number {
    let n = 0;
    for (const c of this.chunks) n += chunkLength(c);
    return n;
  }

  /** A new input with `chunk` appended. Adjacent text chunks are kept separate, as on the wire. */
  append(chunk: ModelInputChunk): ModelInput {
    return new ModelInput([...this.chunks, chunk]);
  }

  /** A new input with one token appended (merged into a trailing text chunk). */
  appendInt(token: number): ModelInput {
    const last = this.chunks[this.chunks.length - 1];
    if (last?.type === "encoded_text") {
      const tokens = new Int32Array(last.tokens.length + 1);
      tokens.set(last.tokens);
      tokens[last.tokens.length] = token;
      return new ModelInput([...this.chunks.slice(0, -1), { type: "encoded_text", tokens }]);
    }
    return this.append(encodedText([token]));
  }

  /** A new input holding this one's chunks followed by `other`'s. */
  concat(other: ModelInput): ModelInput {
    return new ModelInput([...this.chunks, ...other.chunks]);
  }
}

/** Tokens a chunk occupies. */
export function chunkLength(c: ModelInputChunk): number {
  switch (c.type) {
    case "encoded_text":
      return c.tokens.length;
    case "image":
    case "image_asset_pointer":
      if (c.expectedTokens === undefined) {
        throw new TinkerValidationError(
          `the length of an ${c.type} chunk is only known when expectedTokens is set`,
          "expectedTokens",
        );
      }
      return c.expectedTokens;
    case "dmel":
      return dmelLength(c.dmel);
  }
}

/** Dim 0 of a serialized TensorContainer: [optional marker 254] dtype byte, varint ndim, varint dims. */
function dmelLength(bytes: Uint8Array): number {
  let at = bytes[0] === 254 ? 1 : 0;
  at += 1; // dtype
  const readVarint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[at++];
      if (b === undefined) throw new TinkerValidationError("truncated dmel header", "dmel");
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  };
  const ndim = readVarint();
  if (ndim < 1) throw new TinkerValidationError("dmel tensor has no dimensions", "dmel");
  return readVarint();
}

function toInt32(values: ArrayLike<number>, field: string): Int32Array {
  if (values instanceof Int32Array) return values;
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v < 0 || v > 2147483647) {
      throw new TinkerValidationError(
        `${field}[${i}] = ${v} is not a valid token id (a non-negative integer)`,
        field,
      );
    }
    out[i] = v;
  }
  return out;
}

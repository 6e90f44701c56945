import { TinkerValidationError } from "../errors.js";

/** Element types that exist on the Tinker wire. */
export type TensorDType = "int64" | "float32";

/**
 * Typed-array storage of a tensor. `float32` tensors hold a `Float32Array`; `int64` tensors hold an
 * `Int32Array` (token ids and indices always fit; values outside the int32 range are rejected when a
 * tensor is built, and widened to 8 bytes only at the protobuf boundary).
 */
export type TensorStorage = Float32Array | Int32Array;

/** Compressed-sparse-row layout of a 2-D tensor: `data` then holds only the non-zero values. */
export interface SparseCsr {
  readonly crowIndices: Int32Array;
  readonly colIndices: Int32Array;
}

/** A nested array of numbers, as users write tensors by hand. */
export type NestedNumbers = number | readonly NestedNumbers[];

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/**
 * A dense (or CSR-sparse, 2-D) tensor over a typed array, row-major. This is the `TensorData` of the
 * Tinker wire protocol; it never copies into `number[]` on hot paths.
 */
export class TensorData {
  readonly dtype: TensorDType;
  readonly shape: readonly number[];
  /** Dense: all elements row-major. Sparse: the non-zero values, in CSR order. */
  readonly data: TensorStorage;
  readonly sparse: SparseCsr | undefined;

  private constructor(
    dtype: TensorDType,
    data: TensorStorage,
    shape: readonly number[],
    sparse?: SparseCsr,
  ) {
    this.dtype = dtype;
    this.data = data;
    this.shape = shape;
    this.sparse = sparse;
  }

  /** Wrap a typed array without copying. `shape` defaults to 1-D. */
  static fromTyped(data: TensorStorage, shape?: readonly number[]): TensorData {
    const dtype: TensorDType = data instanceof Float32Array ? "float32" : "int64";
    const s = shape ? [...shape] : [data.length];
    const n = s.reduce((a, b) => a * b, 1);
    if (n !== data.length) {
      throw new TinkerValidationError(
        `TensorData shape [${s.join(", ")}] holds ${n} elements but data has ${data.length}`,
        "shape",
      );
    }
    return new TensorData(dtype, data, s);
  }

  /**
   * Build from plain numbers (flat or nested rectangular lists). Ragged lists are rejected.
   * `dtype` defaults to int64 when every value is an integer, else float32.
   */
  static fromArray(values: NestedNumbers | ArrayLike<number>, dtype?: TensorDType): TensorData {
    const shape: number[] = [];
    const flat: number[] = [];
    flattenInto(values as NestedNumbers, 0, shape, flat);
    const dt = dtype ?? (flat.every(Number.isInteger) ? "int64" : "float32");
    return new TensorData(dt, toStorage(flat, dt), shape.length ? shape : [flat.length]);
  }

  /** A CSR-sparse 2-D tensor. */
  static fromCsr(
    values: TensorStorage,
    crowIndices: ArrayLike<number>,
    colIndices: ArrayLike<number>,
    shape: readonly [number, number],
  ): TensorData {
    const crow = Int32Array.from(crowIndices);
    const col = Int32Array.from(colIndices);
    const [rows, cols] = shape;
    if (crow.length !== rows + 1) {
      throw new TinkerValidationError(
        `sparse_crow_indices must have rows + 1 = ${rows + 1} entries, got ${crow.length}`,
        "sparse_crow_indices",
      );
    }
    if (col.length !== values.length || crow[rows] !== values.length) {
      throw new TinkerValidationError(
        `sparse tensor has ${values.length} values, ${col.length} column indices and crow end ${crow[rows]}; all three must agree`,
        "sparse_col_indices",
      );
    }
    for (let i = 0; i < col.length; i++) {
      const c = col[i]!;
      if (c < 0 || c >= cols) {
        throw new TinkerValidationError(
          `sparse column index ${c} out of range [0, ${cols})`,
          "sparse_col_indices",
        );
      }
    }
    const dtype: TensorDType = values instanceof Float32Array ? "float32" : "int64";
    return new TensorData(dtype, values, [rows, cols], { crowIndices: crow, colIndices: col });
  }

  /** Number of elements of the dense tensor. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Dense row-major values (expands a sparse tensor; returns `data` itself when already dense). */
  toDense(): TensorStorage {
    if (!this.sparse) return this.data;
    const [rows, cols] = this.shape as [number, number];
    const out =
      this.dtype === "float32" ? new Float32Array(rows * cols) : new Int32Array(rows * cols);
    const { crowIndices, colIndices } = this.sparse;
    for (let r = 0; r < rows; r++) {
      for (let j = crowIndices[r]!; j < crowIndices[r + 1]!; j++) {
        out[r * cols + colIndices[j]!] = this.data[j]!;
      }
    }
    return out;
  }

  /** A dense copy of this tensor (sparse input is expanded). */
  densify(): TensorData {
    return this.sparse ? new TensorData(this.dtype, this.toDense(), this.shape) : this;
  }

  /** Plain nested arrays, for display and tests. */
  toArray(): NestedNumbers[] {
    const dense = this.toDense();
    return nest(dense, this.shape, 0, 0) as NestedNumbers[];
  }
}

function flattenInto(v: NestedNumbers, depth: number, shape: number[], out: number[]): void {
  if (typeof v === "number") {
    if (depth !== shape.length && shape.length > 0) {
      throw new TinkerValidationError("ragged tensor: nested lists must be rectangular", "data");
    }
    out.push(v);
    return;
  }
  const len = (v as ArrayLike<number>).length;
  if (shape.length === depth) shape.push(len);
  else if (shape[depth] !== len) {
    throw new TinkerValidationError(
      `ragged tensor: dimension ${depth} has lengths ${shape[depth]} and ${len}`,
      "data",
    );
  }
  for (let i = 0; i < len; i++)
    flattenInto((v as readonly NestedNumbers[])[i]!, depth + 1, shape, out);
}

function toStorage(flat: number[], dtype: TensorDType): TensorStorage {
  if (dtype === "float32") return Float32Array.from(flat);
  const out = new Int32Array(flat.length);
  for (let i = 0; i < flat.length; i++) {
    const x = flat[i]!;
    if (!Number.isInteger(x) || x < INT32_MIN || x > INT32_MAX) {
      throw new TinkerValidationError(
        `int64 tensor value ${x} at index ${i} is not an integer in the int32 range`,
        "data",
      );
    }
    out[i] = x;
  }
  return out;
}

function nest(
  data: TensorStorage,
  shape: readonly number[],
  dim: number,
  offset: number,
): NestedNumbers {
  if (dim === shape.length) return data[offset]!;
  const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
  const out: NestedNumbers[] = [];
  for (let i = 0; i < shape[dim]!; i++) out.push(nest(data, shape, dim + 1, offset + i * stride));
  return out;
}

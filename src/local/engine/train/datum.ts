import { TinkerValidationError } from "../../../client/errors.js";
import type { Datum } from "../../../client/types/datum.js";

/** A loss input tensor in plain form (structured-cloneable, dense). */
export interface EngineTensor {
  dtype: "int64" | "float32";
  shape: number[];
  data: Int32Array | Float32Array;
}

/** A datum as the engine core consumes it: token ids and dense loss inputs, no class instances. */
export interface EngineDatum {
  tokens: Int32Array;
  lossFnInputs: Record<string, EngineTensor>;
}

/**
 * Convert a client `Datum` to the engine form. With `copy`, every array is a fresh copy (so it can
 * be transferred to a worker without detaching the caller's buffers).
 */
export function toEngineDatum(datum: Datum, index: number, copy: boolean): EngineDatum {
  let tokens: Int32Array;
  try {
    tokens = datum.modelInput.toInt32Array();
  } catch (err) {
    throw new TinkerValidationError(
      `data[${index}].model_input: the local engine only reads encoded_text chunks (${(err as Error).message})`,
      `data[${index}].model_input`,
    );
  }
  const lossFnInputs: Record<string, EngineTensor> = {};
  for (const [key, t] of Object.entries(datum.lossFnInputs)) {
    const dense = t.toDense();
    lossFnInputs[key] = {
      dtype: t.dtype,
      shape: [...t.shape],
      data: copy || t.sparse ? dense.slice() : dense,
    };
  }
  return { tokens: copy ? tokens.slice() : tokens, lossFnInputs };
}

/** The buffers of `data` to pass as a worker transfer list. */
export function datumTransferList(data: readonly EngineDatum[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const d of data) {
    out.add(d.tokens.buffer as ArrayBuffer);
    for (const t of Object.values(d.lossFnInputs)) out.add(t.data.buffer as ArrayBuffer);
  }
  return [...out];
}

import { TinkerValidationError } from "../errors.js";
import { ModelInput } from "./model-input.js";
import { type NestedNumbers, TensorData, type TensorDType } from "./tensor-data.js";

/** One training example: the model input and the per-position inputs of the loss function. */
export interface Datum {
  readonly modelInput: ModelInput;
  /** Tensors whose leading dimension equals `modelInput.length` (next-token aligned). */
  readonly lossFnInputs: Readonly<Record<string, TensorData>>;
}

/** Loss-input values as users write them: tensors, typed arrays or (nested) number lists. */
export type LossFnInputValue = TensorData | Float32Array | Int32Array | NestedNumbers[];

/** Keys whose element type is implied, as in the reference SDK. */
const KEY_DTYPES: Readonly<Record<string, TensorDType>> = {
  target_tokens: "int64",
  weights: "float32",
  advantages: "float32",
  logprobs: "float32",
  clip_low_threshold: "float32",
  clip_high_threshold: "float32",
};

/**
 * Build a `Datum`, converting plain arrays to tensors with the dtype the key implies
 * (`target_tokens` -> int64; `weights`, `advantages`, `logprobs` -> float32).
 */
export function makeDatum(
  modelInput: ModelInput | ArrayLike<number>,
  lossFnInputs: Readonly<Record<string, LossFnInputValue>>,
): Datum {
  const input = modelInput instanceof ModelInput ? modelInput : ModelInput.fromInts(modelInput);
  const out: Record<string, TensorData> = {};
  for (const [key, value] of Object.entries(lossFnInputs)) {
    out[key] = toTensor(key, value);
  }
  return { modelInput: input, lossFnInputs: out };
}

function toTensor(key: string, value: LossFnInputValue): TensorData {
  if (value instanceof TensorData) return value;
  const dtype = KEY_DTYPES[key];
  if (value instanceof Float32Array || value instanceof Int32Array) {
    if (dtype === "int64" && value instanceof Float32Array) {
      throw new TinkerValidationError(
        `loss input "${key}" must hold integers; pass an Int32Array or a number[]`,
        key,
      );
    }
    if (dtype === "float32" && value instanceof Int32Array)
      return TensorData.fromTyped(Float32Array.from(value));
    return TensorData.fromTyped(value);
  }
  return TensorData.fromArray(value, dtype);
}

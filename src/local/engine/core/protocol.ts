import { TinkerError, TinkerValidationError } from "../../../client/errors.js";
import type { ForwardBackwardOutput } from "../../../client/types/outputs.js";
import { TensorData } from "../../../client/types/tensor-data.js";
import type { EngineTensor } from "../train/datum.js";

/** A request from the main thread to the engine worker. */
export interface WorkerRequest {
  id: number;
  method: string;
  args: unknown[];
}

/** An error as it crosses the thread boundary. */
export interface WireError {
  name: string;
  message: string;
  field?: string;
  /** Set when the error is a TinkerValidationError (or a subclass): the caller's to fix. */
  validation?: true;
  stack?: string;
}

export type WorkerResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: WireError };

/** `ForwardBackwardOutput` with plain tensors (class instances do not survive structured clone). */
export interface WireForwardBackwardOutput {
  lossFnOutputType: string;
  lossFnOutputs: Array<Record<string, EngineTensor>>;
  metrics: Record<string, number>;
}

export function toWireOutput(out: ForwardBackwardOutput): {
  value: WireForwardBackwardOutput;
  transfer: ArrayBuffer[];
} {
  const transfer: ArrayBuffer[] = [];
  const lossFnOutputs = out.lossFnOutputs.map((rec) => {
    const o: Record<string, EngineTensor> = {};
    for (const [k, t] of Object.entries(rec)) {
      const data = t.toDense();
      transfer.push(data.buffer as ArrayBuffer);
      o[k] = { dtype: t.dtype, shape: [...t.shape], data };
    }
    return o;
  });
  return {
    value: { lossFnOutputType: out.lossFnOutputType, lossFnOutputs, metrics: out.metrics },
    transfer,
  };
}

export function fromWireOutput(w: WireForwardBackwardOutput): ForwardBackwardOutput {
  return {
    lossFnOutputType: w.lossFnOutputType,
    lossFnOutputs: w.lossFnOutputs.map((rec) => {
      const o: Record<string, TensorData> = {};
      for (const [k, t] of Object.entries(rec)) o[k] = TensorData.fromTyped(t.data, t.shape);
      return o;
    }),
    metrics: w.metrics,
  };
}

export function toWireError(err: unknown): WireError {
  if (err instanceof Error) {
    const validation = err instanceof TinkerValidationError;
    const field = validation ? err.field : undefined;
    return {
      name: err.name,
      message: err.message,
      ...(validation ? { validation } : {}),
      ...(field !== undefined ? { field } : {}),
      ...(err.stack ? { stack: err.stack } : {}),
    };
  }
  return { name: "Error", message: String(err) };
}

/**
 * Rebuild a typed error on the main thread: validation errors of any subclass (ModelFileError,
 * ModelNotAvailableError, ...) come back as TinkerValidationError with their field and name, other
 * named errors as TinkerError with their name.
 */
export function fromWireError(e: WireError): Error {
  const named = e.name.endsWith("Error") && e.name !== "Error";
  if (!e.validation && !named) return new Error(e.message);
  const err = e.validation
    ? new TinkerValidationError(e.message, e.field)
    : new TinkerError(e.message);
  err.name = e.name;
  return err;
}

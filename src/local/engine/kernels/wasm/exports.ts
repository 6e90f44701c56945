import { type WasmMemory, type WasmModule, wasmApi } from "./wasm-api.js";

/** The functions the kernel module exports (pointers are byte offsets in the shared memory). */
export interface KernelExports {
  setScratch(ptr: number): void;
  heapBase(): number;
  scratchBytes(): number;
  gemm(...args: number[]): void;
  rmsnorm_fwd(...args: number[]): void;
  rmsnorm_bwd(...args: number[]): void;
  rope_table(...args: number[]): void;
  rope(...args: number[]): void;
  swiglu_fwd(...args: number[]): void;
  swiglu_bwd(...args: number[]): void;
  attention_fwd(...args: number[]): void;
  attention_bwd(...args: number[]): void;
  attention_bwd_kv(...args: number[]): void;
  attention_bwd_q(...args: number[]): void;
  logsoftmax_gather(...args: number[]): void;
  logsoftmax_bwd(...args: number[]): void;
  adamw(...args: number[]): void;
  sumsq(...args: number[]): void;
}

/** Kernels a job can name; the index is the op code in the control block. */
export const PARALLEL_OPS = [
  "gemm",
  "rmsnorm_fwd",
  "rmsnorm_bwd",
  "rope_table",
  "rope",
  "swiglu_fwd",
  "swiglu_bwd",
  "attention_fwd",
  "attention_bwd",
  "attention_bwd_kv",
  "attention_bwd_q",
  "logsoftmax_gather",
  "logsoftmax_bwd",
  "adamw",
  "sumsq",
] as const;

export type ParallelOp = (typeof PARALLEL_OPS)[number];

/** Elements per partial sum in the module's `sumsq` (SUMSQ_CHUNK in kernels/wasm/fused.ts). */
export const SUMSQ_CHUNK = 16384;

/** Instantiates the module on a memory and points its scratch at `scratch`. */
export function instantiate(mod: WasmModule, memory: WasmMemory, scratch: number): KernelExports {
  const inst = new wasmApi.Instance(mod, { env: { memory } });
  const ex = inst.exports as unknown as KernelExports;
  ex.setScratch(scratch);
  return ex;
}

// Entry point of the kernel module (AssemblyScript). Built twice by scripts/build-wasm.mjs.
export { setScratch, heapBase, scratchBytes } from "./scratch";
export { gemm } from "./gemm";
export {
  rmsnorm_fwd, rmsnorm_bwd, rope_table, rope, swiglu_fwd, swiglu_bwd, attention_fwd, attention_bwd,
  attention_bwd_kv, attention_bwd_q,
  logsoftmax_gather, logsoftmax_bwd, adamw, sumsq,
} from "./fused";

// Entry point of the kernel module (AssemblyScript). Built twice by scripts/build-wasm.mjs.
export { setScratch, heapBase } from "./scratch";
export { gemm, GEMM_SCRATCH_BYTES } from "./gemm";

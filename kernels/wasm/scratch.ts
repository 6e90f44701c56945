// Each instance (one per thread) owns a scratch region in the shared memory, set once at start-up.

/** Bytes of scratch each thread owns (GEMM packs KC x NC floats = 512 KiB into it). */
export const SCRATCH_BYTES: i32 = 1 << 20;

export let scratchPtr: usize = 0;

export function setScratch(ptr: usize): void {
  scratchPtr = ptr;
}

export function heapBase(): usize {
  return __heap_base;
}

export function scratchBytes(): i32 {
  return SCRATCH_BYTES;
}

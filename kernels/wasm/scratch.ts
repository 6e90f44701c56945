// Each instance (one per thread) owns a scratch region in the shared memory, set once at start-up.

export let scratchPtr: usize = 0;

export function setScratch(ptr: usize): void {
  scratchPtr = ptr;
}

export function heapBase(): usize {
  return __heap_base;
}

import { TinkerError, TinkerValidationError } from "../../../../client/errors.js";
import type { WasmMemory } from "./wasm-api.js";

const PAGE = 65536;
const ALIGN = 64;

/**
 * Size class of a request in bytes: multiples of 64 up to 4 KiB, then 8 classes per power of two
 * (at most 12.5% waste). Blocks are recycled per class; they are never split or coalesced.
 */
export function sizeClass(bytes: number): number {
  if (bytes <= 4096) return Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 3);
  return Math.ceil(bytes / step) * step;
}

/**
 * A free-list allocator over a bump heap in a (shared) `WasmMemory`, growing the memory on
 * demand. Views stay valid after `grow`: a shared memory never moves, it only gets longer.
 */
export class WasmHeap {
  private top: number;
  private readonly freeLists = new Map<number, number[]>();
  private readonly live = new Map<number, number>();
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private liveBytes = 0;

  constructor(
    private readonly memory: WasmMemory,
    start: number,
  ) {
    this.top = Math.ceil(start / ALIGN) * ALIGN;
    this.buffers.add(memory.buffer);
  }

  /** The memory's current buffer (a new object after each grow; all of them are recognised). */
  get buffer(): ArrayBufferLike {
    const buf = this.memory.buffer;
    this.buffers.add(buf);
    return buf;
  }

  /** Whether `buf` is a view of this heap's memory. */
  owns(buf: ArrayBufferView): boolean {
    return this.buffers.has(buf.buffer);
  }

  /** Bytes currently handed out (by size class) and the heap's high-water mark. */
  stats(): { liveBytes: number; heapTop: number; memoryBytes: number } {
    return {
      liveBytes: this.liveBytes,
      heapTop: this.top,
      memoryBytes: this.memory.buffer.byteLength,
    };
  }

  /** Byte offset of a zero-filled block of at least `bytes` bytes (64-byte aligned). */
  allocBytes(bytes: number): number {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new TinkerValidationError(
        `alloc: length must be a non-negative integer, got ${bytes / 4}`,
        "length",
      );
    }
    const size = sizeClass(bytes);
    const list = this.freeLists.get(size);
    let off = list?.pop();
    if (off === undefined) {
      off = this.top;
      this.ensure(off + size);
      this.top = off + size;
    } else {
      new Uint8Array(this.buffer, off, size).fill(0);
    }
    this.live.set(off, size);
    this.liveBytes += size;
    return off;
  }

  /** Returns a block obtained from `allocBytes`. */
  freeBytes(off: number): void {
    const size = this.live.get(off);
    if (size === undefined) {
      throw new TinkerValidationError(
        "free: buffer was not returned by alloc() or was already freed (pass the alloc()ed array, not a subarray)",
        "buf",
      );
    }
    this.live.delete(off);
    this.liveBytes -= size;
    let list = this.freeLists.get(size);
    if (!list) {
      list = [];
      this.freeLists.set(size, list);
    }
    list.push(off);
  }

  /** A zero-filled Float32Array of `length` floats. */
  alloc(length: number): Float32Array {
    const off = this.allocBytes(length * 4);
    return new Float32Array(this.buffer, off, length);
  }

  free(buf: Float32Array): void {
    if (!this.owns(buf)) {
      throw new TinkerValidationError("free: buffer does not belong to these kernels", "buf");
    }
    this.freeBytes(buf.byteOffset);
  }

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    // Grow by at least a quarter of the current size so a run of small allocations is cheap.
    const pages = Math.max(Math.ceil((end - have) / PAGE), Math.ceil(have / PAGE / 4));
    try {
      this.memory.grow(pages);
    } catch {
      try {
        this.memory.grow(Math.ceil((end - have) / PAGE));
      } catch (err) {
        throw new TinkerError(
          `wasm kernels: out of memory growing the heap to ${end} bytes (the 4 GiB wasm32 limit or the machine's memory)`,
          { cause: err },
        );
      }
    }
    this.buffers.add(this.memory.buffer);
  }
}

import { applyRotary } from "../kernels/js.js";
import type { Kernels } from "../kernels/types.js";
import type { ModelConfig } from "./config.js";
import type { LoraAdapter, LoraGroup, LoraGroupName, LoraPair } from "./lora.js";
import { type BaseWeights, freeBaseWeights, type LayerWeights } from "./weights.js";

/** Per-layer key/value cache of one sequence: [capacity, numKvHeads * headDim] per layer. */
export interface KvCache {
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  readonly capacity: number;
}

/**
 * A run of consecutive rows of the batch that form one causal sequence. With `cache`, its keys and
 * values are written at `cacheOffset..` and attention also sees the cached prefix.
 */
export interface SeqSpan {
  readonly start: number;
  readonly len: number;
  readonly cache?: KvCache;
  readonly cacheOffset?: number;
}

/** Activations of one layer kept for the backward pass. */
interface LayerActs {
  /** The layer's input (kept passes only: the residual buffer itself, which is never written again). */
  xIn: Float32Array | null;
  rstd1: Float32Array;
  h1: Float32Array;
  qRaw: Float32Array | null;
  rstdQ: Float32Array | null;
  kRaw: Float32Array | null;
  rstdK: Float32Array | null;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  attn: Float32Array;
  lse: Float32Array;
  xMid: Float32Array;
  rstd2: Float32Array;
  h2: Float32Array;
  gate: Float32Array;
  up: Float32Array;
  act: Float32Array;
  /** x @ A^T per LoRA group ([rows, group rank]). */
  loraH: Partial<Record<LoraGroupName, Float32Array>>;
}

/** What `forward` returns: the final normed hidden states and (when kept) everything backward needs. */
export interface ForwardState {
  readonly rows: number;
  readonly spans: readonly SeqSpan[];
  readonly positions: Int32Array;
  /** Residual stream after the last layer [rows, hidden]. */
  readonly xLast: Float32Array;
  readonly rstdF: Float32Array;
  /** Final-normed hidden states [rows, hidden]. */
  readonly xf: Float32Array;
  readonly layers: LayerActs[];
  readonly adapter: LoraAdapter | null;
  /** Buffers to free when done. */
  readonly scratch: Scratch;
}

/**
 * Kernel-heap buffers kept between passes. Training repeats similar shapes every step, so reusing
 * buffers skips the heap's zero-fill; every buffer a pass takes from the pool is fully written
 * before it is read. Lengths are rounded up to 4 size classes per octave (at most 25% slack) so
 * batches of varying length (RL) still reuse them. Beyond `maxBytes` the pool frees instead.
 */
export class BufferPool {
  private readonly free = new Map<number, Float32Array[]>();
  private bytes = 0;
  constructor(
    private readonly kernels: Kernels,
    private readonly maxBytes = 1 << 30,
  ) {}
  /** A buffer of at least `n` floats (its length is `sizeClass(n)`). */
  take(n: number): Float32Array {
    const size = sizeClass(n);
    const b = this.free.get(size)?.pop();
    if (b) {
      this.bytes -= size * 4;
      return b;
    }
    return this.kernels.alloc(size);
  }
  give(b: Float32Array): void {
    if (this.bytes + b.length * 4 > this.maxBytes) {
      this.kernels.free(b);
      return;
    }
    let list = this.free.get(b.length);
    if (!list) {
      list = [];
      this.free.set(b.length, list);
    }
    list.push(b);
    this.bytes += b.length * 4;
  }
  /** Return every pooled buffer to the kernel heap. */
  clear(): void {
    for (const list of this.free.values()) for (const b of list) this.kernels.free(b);
    this.free.clear();
    this.bytes = 0;
  }
}

/** Round up to 4 steps per power of two (exact below 64). */
export function sizeClass(n: number): number {
  if (n <= 64) return Math.max(n, 1);
  const step = 2 ** (Math.floor(Math.log2(n)) - 2);
  return Math.ceil(n / step) * step;
}

/**
 * The buffers of one pass, released together. Buffers come from a `BufferPool` when one is given
 * (then they are NOT zeroed: callers must write before reading), else from `kernels.alloc`.
 */
export class Scratch {
  private readonly bufs: Float32Array[] = [];
  constructor(
    private readonly kernels: Kernels,
    private readonly pool?: BufferPool,
  ) {}
  alloc(n: number): Float32Array {
    const b = this.pool ? this.pool.take(n) : this.kernels.alloc(Math.max(n, 1));
    this.bufs.push(b);
    return b.length === n ? b : b.subarray(0, n);
  }
  release(): void {
    for (const b of this.bufs) {
      if (this.pool) this.pool.give(b);
      else this.kernels.free(b);
    }
    this.bufs.length = 0;
  }
}

/** Rows of the vocabulary projection computed at once: bounds the logits block to ~4M floats. */
export function headBlockRows(vocab: number, rows: number): number {
  return Math.max(1, Math.min(rows, Math.floor((4 << 20) / vocab)));
}

/**
 * A decoder-only transformer (Qwen3 / Llama-3) with frozen base weights and optional LoRA, with a
 * hand-written backward pass. All heavy math goes through `Kernels`. Row layout: the batch is the
 * concatenation of sequences (`SeqSpan`s); projections run over all rows at once, attention per span.
 */
export class Transformer {
  readonly config: ModelConfig;
  readonly kernels: Kernels;
  readonly weights: BaseWeights;
  private readonly invFreq: Float64Array | null;
  /** Reused activation buffers (see `BufferPool`). */
  readonly pool: BufferPool;
  /** Set inside `rowInvariant(...)`: projections compute each row independently of the others. */
  private invariantRows = false;

  constructor(kernels: Kernels, config: ModelConfig, weights: BaseWeights) {
    if (config.numHeads % config.numKvHeads !== 0) {
      throw new Error(
        `numHeads ${config.numHeads} must be a multiple of numKvHeads ${config.numKvHeads}`,
      );
    }
    this.kernels = kernels;
    this.config = config;
    this.weights = weights;
    this.invFreq = config.ropeScaling ? ropeInvFreq(config) : null;
    this.pool = new BufferPool(kernels);
  }

  /**
   * Runs `fn` with every projection in row-invariant mode (`GemmParams.rowInvariant`): each row's
   * outputs are then bit-identical whatever other rows share the pass, so a sampled sequence does
   * not depend on what it is decoded together with. Sampling's decode steps run this way.
   */
  rowInvariant<T>(fn: () => T): T {
    const before = this.invariantRows;
    this.invariantRows = true;
    try {
      return fn();
    } finally {
      this.invariantRows = before;
    }
  }

  /** Scratch space for one pass, backed by the model's buffer pool. */
  scratch(): Scratch {
    return new Scratch(this.kernels, this.pool);
  }

  get qDim(): number {
    return this.config.numHeads * this.config.headDim;
  }
  get kvDim(): number {
    return this.config.numKvHeads * this.config.headDim;
  }

  /** A zeroed KV cache for `capacity` positions. */
  allocCache(capacity: number, scratch: Scratch): KvCache {
    const n = capacity * this.kvDim;
    const k: Float32Array[] = [];
    const v: Float32Array[] = [];
    for (let l = 0; l < this.config.numLayers; l++) {
      k.push(scratch.alloc(n));
      v.push(scratch.alloc(n));
    }
    return { k, v, capacity };
  }

  /**
   * Run all layers and the final norm over `tokens` (rows). With `keep`, every activation needed by
   * `backward` is retained in the returned state; otherwise buffers are reused between layers.
   * The caller must `state.scratch.release()` when done.
   */
  forward(
    tokens: Int32Array,
    spans: readonly SeqSpan[],
    adapter: LoraAdapter | null,
    keep: boolean,
  ): ForwardState {
    const K = this.kernels;
    const c = this.config;
    const rows = tokens.length;
    const d = c.hiddenSize;
    const scratch = this.scratch();
    const positions = new Int32Array(rows);
    for (const s of spans)
      for (let i = 0; i < s.len; i++) positions[s.start + i] = (s.cacheOffset ?? 0) + i;

    let x = scratch.alloc(rows * d);
    const emb = this.weights.embed;
    for (let r = 0; r < rows; r++) x.set(emb.subarray(tokens[r]! * d, tokens[r]! * d + d), r * d);

    const layers: LayerActs[] = [];
    let shared: LayerActs | null = null;
    for (let l = 0; l < c.numLayers; l++) {
      if (!keep && !shared) shared = this.allocActs(rows, scratch, adapter, l);
      const acts: LayerActs = shared ?? this.allocActs(rows, scratch, adapter, l);
      this.layerForward(l, x, rows, spans, positions, adapter, acts, keep);
      // Kept: acts.xMid is x + attn in its own buffer and the MLP writes a new residual buffer.
      // Not kept: both blocks accumulate into x in place.
      if (keep) {
        layers.push(acts);
        const next = scratch.alloc(rows * d);
        next.set(acts.xMid);
        this.mlpResidual(l, next, rows, adapter, acts);
        x = next;
      } else {
        this.mlpResidual(l, x, rows, adapter, acts);
      }
    }
    const rstdF = scratch.alloc(rows);
    const xf = scratch.alloc(rows * d);
    K.rmsNormForward(x, this.weights.finalNorm, xf, rstdF, rows, d, c.rmsNormEps);
    return { rows, spans, positions, xLast: x, rstdF, xf, layers, adapter, scratch };
  }

  private allocActs(
    rows: number,
    s: Scratch,
    adapter: LoraAdapter | null,
    layer: number,
  ): LayerActs {
    const c = this.config;
    const d = c.hiddenSize;
    const loraH: Partial<Record<LoraGroupName, Float32Array>> = {};
    if (adapter) {
      for (const [name, group] of Object.entries(adapter.groups[layer] ?? {})) {
        if (group) loraH[name as LoraGroupName] = s.alloc(rows * group.rank);
      }
    }
    return {
      xIn: null,
      rstd1: s.alloc(rows),
      h1: s.alloc(rows * d),
      qRaw: c.qkNorm ? s.alloc(rows * this.qDim) : null,
      rstdQ: c.qkNorm ? s.alloc(rows * c.numHeads) : null,
      kRaw: c.qkNorm ? s.alloc(rows * this.kvDim) : null,
      rstdK: c.qkNorm ? s.alloc(rows * c.numKvHeads) : null,
      q: s.alloc(rows * this.qDim),
      k: s.alloc(rows * this.kvDim),
      v: s.alloc(rows * this.kvDim),
      attn: s.alloc(rows * this.qDim),
      lse: s.alloc(rows * c.numHeads),
      xMid: s.alloc(rows * d),
      rstd2: s.alloc(rows),
      h2: s.alloc(rows * d),
      gate: s.alloc(rows * c.intermediateSize),
      up: s.alloc(rows * c.intermediateSize),
      act: s.alloc(rows * c.intermediateSize),
      loraH,
    };
  }

  /** Attention block: acts.xMid = x + attn(x). (x itself is left unchanged.) */
  private layerForward(
    l: number,
    x: Float32Array,
    rows: number,
    spans: readonly SeqSpan[],
    positions: Int32Array,
    adapter: LoraAdapter | null,
    a: LayerActs,
    keep: boolean,
  ): void {
    const K = this.kernels;
    const c = this.config;
    const w = this.weights.layers[l]!;
    const groups = adapter?.groups[l];
    const d = c.hiddenSize;
    if (keep) a.xIn = x;
    K.rmsNormForward(x, w.inputNorm, a.h1, a.rstd1, rows, d, c.rmsNormEps);
    const sc = adapter?.scale ?? 0;
    const qkv = this.loraIn(a.h1, rows, groups?.qkv, a.loraH.qkv);
    if (c.qkNorm) {
      this.linear(a.h1, rows, w.q, d, this.qDim, a.qRaw!, qkv?.[0], sc);
      this.linear(a.h1, rows, w.k, d, this.kvDim, a.kRaw!, qkv?.[1], sc);
      K.rmsNormForward(
        a.qRaw!,
        w.qNorm!,
        a.q,
        a.rstdQ!,
        rows * c.numHeads,
        c.headDim,
        c.rmsNormEps,
      );
      K.rmsNormForward(
        a.kRaw!,
        w.kNorm!,
        a.k,
        a.rstdK!,
        rows * c.numKvHeads,
        c.headDim,
        c.rmsNormEps,
      );
    } else {
      this.linear(a.h1, rows, w.q, d, this.qDim, a.q, qkv?.[0], sc);
      this.linear(a.h1, rows, w.k, d, this.kvDim, a.k, qkv?.[1], sc);
    }
    this.linear(a.h1, rows, w.v, d, this.kvDim, a.v, qkv?.[2], sc);
    this.rope(a.q, positions, rows, c.numHeads, false);
    this.rope(a.k, positions, rows, c.numKvHeads, false);

    const qd = this.qDim;
    const kvd = this.kvDim;
    for (const s of spans) {
      const q = a.q.subarray(s.start * qd, (s.start + s.len) * qd);
      let k = a.k.subarray(s.start * kvd, (s.start + s.len) * kvd);
      let v = a.v.subarray(s.start * kvd, (s.start + s.len) * kvd);
      let kvLen = s.len;
      if (s.cache) {
        const off = s.cacheOffset ?? 0;
        kvLen = off + s.len;
        s.cache.k[l]!.set(k, off * kvd);
        s.cache.v[l]!.set(v, off * kvd);
        k = s.cache.k[l]!.subarray(0, kvLen * kvd);
        v = s.cache.v[l]!.subarray(0, kvLen * kvd);
      }
      K.attentionForward({
        q,
        k,
        v,
        seqLen: s.len,
        kvLen,
        nHeads: c.numHeads,
        nKvHeads: c.numKvHeads,
        headDim: c.headDim,
        scale: 1 / Math.sqrt(c.headDim),
        out: a.attn.subarray(s.start * qd, (s.start + s.len) * qd),
        lse: a.lse.subarray(s.start * c.numHeads, (s.start + s.len) * c.numHeads),
      });
    }
    if (keep) a.xMid.set(x);
    else if (a.xMid !== x) a.xMid = x;
    // xMid += attn @ Wo^T (+ LoRA)
    const o = this.loraIn(a.attn, rows, groups?.o, a.loraH.o);
    this.linear(a.attn, rows, w.o, qd, d, a.xMid, o?.[0], sc, true);
  }

  /** MLP block in place: x += down(silu(gate(h2)) * up(h2)), h2 = norm(x). */
  private mlpResidual(
    l: number,
    x: Float32Array,
    rows: number,
    adapter: LoraAdapter | null,
    a: LayerActs,
  ): void {
    const K = this.kernels;
    const c = this.config;
    const w = this.weights.layers[l]!;
    const groups = adapter?.groups[l];
    const sc = adapter?.scale ?? 0;
    const d = c.hiddenSize;
    const ff = c.intermediateSize;
    K.rmsNormForward(x, w.postNorm, a.h2, a.rstd2, rows, d, c.rmsNormEps);
    const gateUp = this.loraIn(a.h2, rows, groups?.gate_up, a.loraH.gate_up);
    this.linear(a.h2, rows, w.gate, d, ff, a.gate, gateUp?.[0], sc);
    this.linear(a.h2, rows, w.up, d, ff, a.up, gateUp?.[1], sc);
    K.swigluForward(a.gate, a.up, a.act, rows * ff);
    const down = this.loraIn(a.act, rows, groups?.down, a.loraH.down);
    this.linear(a.act, rows, w.down, ff, d, x, down?.[0], sc, true);
  }

  /**
   * y = x W^T + scale * (x A^T) B^T, or y += ... with `accumulate`. `slot` is the projection's share
   * of its group's `x A^T` (from `loraIn`).
   */
  linear(
    x: Float32Array,
    rows: number,
    W: Float32Array,
    inDim: number,
    outDim: number,
    y: Float32Array,
    slot: LoraSlot | undefined,
    scale: number,
    accumulate = false,
  ): void {
    const K = this.kernels;
    const rowInvariant = this.invariantRows;
    K.gemm({
      transA: false,
      transB: true,
      m: rows,
      n: outDim,
      k: inDim,
      a: x,
      b: W,
      c: y,
      beta: accumulate ? 1 : 0,
      rowInvariant,
    });
    if (slot) {
      K.gemm({
        transA: false,
        transB: true,
        m: rows,
        n: outDim,
        k: slot.rank,
        a: slot.h.subarray(slot.col),
        lda: slot.ld,
        b: slot.pair.b,
        c: y,
        alpha: scale,
        beta: 1,
        rowInvariant,
      });
    }
  }

  /** h = x A^T for a whole LoRA group (one product), and each member's slot of it. */
  private loraIn(
    x: Float32Array,
    rows: number,
    group: LoraGroup | undefined,
    h: Float32Array | undefined,
  ): LoraSlot[] | undefined {
    if (!group || !h) return undefined;
    this.kernels.gemm({
      transA: false,
      transB: true,
      m: rows,
      n: group.rank,
      k: group.inDim,
      a: x,
      b: group.a,
      c: h,
      rowInvariant: this.invariantRows,
    });
    return slotsOf(group, h);
  }

  /**
   * Backward of `linear` for one projection: dx (+)= dy W; dB += scale dy^T h; and dy B goes into the
   * projection's columns of `g` (rows x group rank), which `loraInBackward` turns into dA and the
   * LoRA part of dx. With `needDx` false, dx is neither computed nor touched.
   */
  linearBackward(
    dy: Float32Array,
    rows: number,
    W: Float32Array,
    inDim: number,
    outDim: number,
    dx: Float32Array,
    accumulate: boolean,
    slot: LoraSlot | undefined,
    g: Float32Array | null,
    scale: number,
    needDx = true,
  ): void {
    const K = this.kernels;
    if (needDx) {
      K.gemm({
        transA: false,
        transB: false,
        m: rows,
        n: inDim,
        k: outDim,
        a: dy,
        b: W,
        c: dx,
        beta: accumulate ? 1 : 0,
      });
    }
    if (slot && g) {
      const r = slot.rank;
      K.gemm({
        transA: false,
        transB: false,
        m: rows,
        n: r,
        k: outDim,
        a: dy,
        b: slot.pair.b,
        c: g.subarray(slot.col),
        ldc: slot.ld,
      });
      K.gemm({
        transA: true,
        transB: false,
        m: outDim,
        n: r,
        k: rows,
        a: dy,
        b: slot.h.subarray(slot.col),
        ldb: slot.ld,
        c: slot.pair.dB,
        alpha: scale,
        beta: 1,
      });
    }
  }

  /**
   * The group half of the LoRA backward, after `linearBackward` filled `g` for every member:
   * dA += scale g^T x for the stacked A factors, and dx += scale g A when `dx` is given.
   */
  loraInBackward(
    x: Float32Array,
    rows: number,
    group: LoraGroup | undefined,
    g: Float32Array | null,
    dx: Float32Array | null,
    scale: number,
  ): void {
    if (!group || !g) return;
    const K = this.kernels;
    const R = group.rank;
    K.gemm({
      transA: true,
      transB: false,
      m: R,
      n: group.inDim,
      k: rows,
      a: g,
      b: x,
      c: group.dA,
      alpha: scale,
      beta: 1,
    });
    if (dx) {
      K.gemm({
        transA: false,
        transB: false,
        m: rows,
        n: group.inDim,
        k: R,
        a: g,
        b: group.a,
        c: dx,
        alpha: scale,
        beta: 1,
      });
    }
  }

  private rope(
    x: Float32Array,
    positions: Int32Array,
    rows: number,
    heads: number,
    inverse: boolean,
  ): void {
    const c = this.config;
    if (this.invFreq) applyRotary(x, positions, rows, heads, c.headDim, this.invFreq, inverse);
    else this.kernels.rope(x, positions, rows, heads, c.headDim, c.ropeTheta, inverse);
  }

  /**
   * logits[rows, vocab] for final-normed rows `xf` (a block), through the LoRA on lm_head if any.
   * `h` (rows * rank) receives xf A^T when the adapter trains the unembedding.
   */
  logits(
    xf: Float32Array,
    rows: number,
    adapter: LoraAdapter | null,
    out: Float32Array,
    h: Float32Array | undefined,
  ): void {
    const c = this.config;
    const slots = this.loraIn(xf, rows, adapter?.lmHeadGroup ?? undefined, h);
    const W = this.weights.lmHead;
    this.linear(xf, rows, W, c.hiddenSize, c.vocabSize, out, slots?.[0], adapter?.scale ?? 0);
  }

  /**
   * Calls `visit(row, i)` with the logits of rows `from`..`rows`-1 of final-normed `xf`, computed a
   * block at a time (`headBlockRows`) so no [rows, vocab] matrix exists. `row` is a view that the
   * next block overwrites: copy what must outlive the call.
   */
  forEachLogitsRow(
    xf: Float32Array,
    rows: number,
    adapter: LoraAdapter | null,
    from: number,
    visit: (row: Float32Array, i: number) => void,
  ): void {
    const V = this.config.vocabSize;
    const d = this.config.hiddenSize;
    const blockRows = headBlockRows(V, rows - from);
    const s = this.scratch();
    try {
      const logits = s.alloc(blockRows * V);
      const h = adapter?.lmHead ? s.alloc(blockRows * adapter.lora.rank) : undefined;
      for (let r0 = from; r0 < rows; r0 += blockRows) {
        const nb = Math.min(blockRows, rows - r0);
        this.logits(xf.subarray(r0 * d, (r0 + nb) * d), nb, adapter, logits.subarray(0, nb * V), h);
        for (let j = 0; j < nb; j++) visit(logits.subarray(j * V, (j + 1) * V), r0 + j);
      }
    } finally {
      s.release();
    }
  }

  /**
   * Backward of `logits` for one block: dxf = dlogits W (+ LoRA), lm_head LoRA gradients accumulated.
   * `h` is the block's `xf A^T` from `logits`; `g` is scratch of rows * rank.
   */
  logitsBackward(
    dlogits: Float32Array,
    xf: Float32Array,
    rows: number,
    adapter: LoraAdapter | null,
    h: Float32Array | undefined,
    g: Float32Array | null,
    dxf: Float32Array,
  ): void {
    const c = this.config;
    const group = adapter?.lmHeadGroup ?? undefined;
    const slot = group && h ? slotsOf(group, h)[0] : undefined;
    const sc = adapter?.scale ?? 0;
    const W = this.weights.lmHead;
    this.linearBackward(dlogits, rows, W, c.hiddenSize, c.vocabSize, dxf, false, slot, g, sc);
    this.loraInBackward(xf, rows, group, g, dxf, sc);
  }

  /**
   * Backward through the layers given dLoss/dxf ([rows, hidden]); accumulates LoRA gradients into
   * `state.adapter`. Requires a state from `forward(..., keep = true)`.
   */
  backward(state: ForwardState, dxf: Float32Array): void {
    const K = this.kernels;
    const c = this.config;
    const adapter = state.adapter;
    const { rows, positions } = state;
    const d = c.hiddenSize;
    const ff = c.intermediateSize;
    const qd = this.qDim;
    const kvd = this.kvDim;
    const sc = adapter?.scale ?? 0;
    const s = this.scratch();
    try {
      const dx = s.alloc(rows * d);
      K.rmsNormBackward(dxf, state.xLast, this.weights.finalNorm, state.rstdF, dx, rows, d);
      const dAct = s.alloc(rows * ff);
      const dGate = s.alloc(rows * ff);
      const dUp = s.alloc(rows * ff);
      const dh = s.alloc(rows * d);
      const dAttn = s.alloc(rows * qd);
      const dq = s.alloc(rows * qd);
      const dk = s.alloc(rows * kvd);
      const dv = s.alloc(rows * kvd);
      const dqRaw = c.qkNorm ? s.alloc(rows * qd) : null;
      const dkRaw = c.qkNorm ? s.alloc(rows * kvd) : null;
      // Columns of dy B for the widest group (q, k and v: three ranks).
      const g = adapter ? s.alloc(rows * adapter.lora.rank * 3) : null;
      for (let l = c.numLayers - 1; l >= 0; l--) {
        const a = state.layers[l]!;
        const w: LayerWeights = this.weights.layers[l]!;
        const groups = adapter?.groups[l];
        const slot = (name: LoraGroupName, i: number): LoraSlot | undefined => {
          const group = groups?.[name];
          const h = a.loraH[name];
          return group && h ? slotsOf(group, h)[i] : undefined;
        };
        // MLP: x_out = xMid + down(act); dx flows to xMid unchanged plus through the MLP.
        this.linearBackward(dx, rows, w.down, ff, d, dAct, false, slot("down", 0), g, sc);
        this.loraInBackward(a.act, rows, groups?.down, g, dAct, sc);
        K.swigluBackward(dAct, a.gate, a.up, dGate, dUp, rows * ff);
        this.linearBackward(dGate, rows, w.gate, d, ff, dh, false, slot("gate_up", 0), g, sc);
        this.linearBackward(dUp, rows, w.up, d, ff, dh, true, slot("gate_up", 1), g, sc);
        this.loraInBackward(a.h2, rows, groups?.gate_up, g, dh, sc);
        K.rmsNormBackward(dh, a.xMid, w.postNorm, a.rstd2, dx, rows, d, true);
        // Attention: xMid = xIn + o(attn).
        this.linearBackward(dx, rows, w.o, qd, d, dAttn, false, slot("o", 0), g, sc);
        this.loraInBackward(a.attn, rows, groups?.o, g, dAttn, sc);
        for (const sp of state.spans) {
          const qs = sp.start * qd;
          const qe = (sp.start + sp.len) * qd;
          const ks = sp.start * kvd;
          const ke = (sp.start + sp.len) * kvd;
          K.attentionBackward({
            q: a.q.subarray(qs, qe),
            k: a.k.subarray(ks, ke),
            v: a.v.subarray(ks, ke),
            seqLen: sp.len,
            nHeads: c.numHeads,
            nKvHeads: c.numKvHeads,
            headDim: c.headDim,
            scale: 1 / Math.sqrt(c.headDim),
            out: a.attn.subarray(qs, qe),
            lse: a.lse.subarray(sp.start * c.numHeads, (sp.start + sp.len) * c.numHeads),
            dOut: dAttn.subarray(qs, qe),
            dq: dq.subarray(qs, qe),
            dk: dk.subarray(ks, ke),
            dv: dv.subarray(ks, ke),
          });
        }
        this.rope(dq, positions, rows, c.numHeads, true);
        this.rope(dk, positions, rows, c.numKvHeads, true);
        let dqIn = dq;
        let dkIn = dk;
        if (c.qkNorm) {
          K.rmsNormBackward(dq, a.qRaw!, w.qNorm!, a.rstdQ!, dqRaw!, rows * c.numHeads, c.headDim);
          K.rmsNormBackward(
            dk,
            a.kRaw!,
            w.kNorm!,
            a.rstdK!,
            dkRaw!,
            rows * c.numKvHeads,
            c.headDim,
          );
          dqIn = dqRaw!;
          dkIn = dkRaw!;
        }
        // The gradient reaching layer 0's input would only flow into the frozen embedding.
        const needDx = l > 0;
        this.linearBackward(dqIn, rows, w.q, d, qd, dh, false, slot("qkv", 0), g, sc, needDx);
        this.linearBackward(dkIn, rows, w.k, d, kvd, dh, true, slot("qkv", 1), g, sc, needDx);
        this.linearBackward(dv, rows, w.v, d, kvd, dh, true, slot("qkv", 2), g, sc, needDx);
        this.loraInBackward(a.h1, rows, groups?.qkv, g, needDx ? dh : null, sc);
        if (needDx) {
          K.rmsNormBackward(dh, a.xIn!, w.inputNorm, a.rstd1, dx, rows, d, true);
        }
      }
    } finally {
      s.release();
    }
  }

  /** Free the base weights (the model is unusable afterwards). */
  dispose(): void {
    this.pool.clear();
    freeBaseWeights(this.kernels, this.weights);
  }
}

/** One projection's share of its LoRA group's `x A^T`: columns col..col+rank of h (row stride ld). */
export interface LoraSlot {
  readonly pair: LoraPair;
  readonly h: Float32Array;
  readonly col: number;
  readonly rank: number;
  readonly ld: number;
}

function slotsOf(group: LoraGroup, h: Float32Array): LoraSlot[] {
  const rank = group.rank / group.members.length;
  return group.members.map(({ pair, col }) => ({ pair, h, col, rank, ld: group.rank }));
}

/** h = x A^T for a whole LoRA group (one product), and each member's slot of it. */
/**
 * Inverse RoPE frequencies with Llama-3.1 scaling: long wavelengths are divided by `factor`, short
 * ones kept, and the band between smoothly interpolated (as in HF's `rope_type: "llama3"`).
 */
export function ropeInvFreq(config: ModelConfig): Float64Array {
  const half = config.headDim >> 1;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = config.ropeTheta ** ((-2 * i) / config.headDim);
  const rs = config.ropeScaling;
  if (!rs) return inv;
  const lowWavelen = rs.originalMaxPositionEmbeddings / rs.lowFreqFactor;
  const highWavelen = rs.originalMaxPositionEmbeddings / rs.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const f = inv[i]!;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowWavelen) inv[i] = f / rs.factor;
    else if (wavelen >= highWavelen) {
      const smooth =
        (rs.originalMaxPositionEmbeddings / wavelen - rs.lowFreqFactor) /
        (rs.highFreqFactor - rs.lowFreqFactor);
      inv[i] = (1 - smooth) * (f / rs.factor) + smooth * f;
    }
  }
  return inv;
}

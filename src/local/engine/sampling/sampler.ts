import { TinkerValidationError } from "../../../client/errors.js";
import type { SampleResponse, StopReason } from "../../../client/types/outputs.js";
import type { SamplingParams } from "../../../client/types/params.js";
import type { LoraAdapter } from "../model/lora.js";
import { randomSeed, SeededRng } from "../model/prng.js";
import type { ForwardState, KvCache, Scratch, SeqSpan, Transformer } from "../model/transformer.js";
import { rowLogSumExp, type TokenChoiceParams, TokenChooser, topKIndices } from "./choose-token.js";

/** Turns token ids back into text, for stop strings. */
export type Decode = (ids: readonly number[]) => string;

export interface SampleRequest {
  prompt: Int32Array;
  numSamples: number;
  params: SamplingParams;
  promptLogprobs: boolean;
  topkPromptLogprobs: number;
  maxContextLength: number;
  /** Needed only when `params.stop` holds strings. */
  decode?: Decode;
}

/** Largest `num_samples` per request. */
export const MAX_NUM_SAMPLES = 256;

interface ResolvedRequest {
  choice: TokenChoiceParams;
  maxTokens: number;
  seed: number;
  stopIds: Set<number>;
  stopStrings: string[];
  /** Length of the longest stop string (0: none). */
  maxStop: number;
}

/**
 * Sample `numSamples` continuations of `prompt` with a KV cache. The prompt is prefilled once and
 * its cache copied to every sample; decoding then advances all live samples together, one token
 * per step.
 *
 * Semantics (as Tinker):
 * - `logprobs` of each sampled token are under the *unmodified* model distribution
 *   (temperature 1, no top-k/top-p), so they equal what a forward pass on the same tokens returns.
 * - Generation stops at a stop token id, at any of the model's EOS ids, or when the decoded text of
 *   the generated tokens contains a stop string; the token that completed the stop is included and
 *   `stopReason` is "stop". Otherwise it stops after `maxTokens` with "length".
 * - The same `seed` gives the same tokens; sample i uses its own PRNG stream derived from the seed.
 *   Decode steps compute every row independently of the others (`Transformer.rowInvariant`), so a
 *   sample's tokens do not depend on `numSamples` or on other requests decoded with it.
 * - `promptLogprobs[0]` and `topkPromptLogprobs[0]` are null (nothing predicts the first token).
 */
export function sample(
  model: Transformer,
  adapter: LoraAdapter | null,
  req: SampleRequest,
): SampleResponse {
  const [res] = sampleBatch(model, adapter, [req]);
  if (res instanceof Error) throw res;
  return res!;
}

/**
 * `sample` for several requests on the same model and adapter at once, through a `DecodeSession`:
 * results are what `sample` gives for each request alone, bit for bit; a request that fails
 * validation gets its error in its slot and does not affect the others. Requests are admitted while
 * their KV caches fit `kvBudgetBytes`; the rest join as earlier ones finish.
 */
export function sampleBatch(
  model: Transformer,
  adapter: LoraAdapter | null,
  reqs: readonly SampleRequest[],
  kvBudgetBytes = KV_BATCH_BYTES,
): Array<SampleResponse | Error> {
  const results: Array<SampleResponse | Error> = new Array(reqs.length);
  const session = new DecodeSession(model, adapter, kvBudgetBytes);
  try {
    let next = 0;
    while (next < reqs.length || session.live) {
      const admit: number[] = [];
      let bytes = 0;
      for (; next < reqs.length; next++) {
        const need = session.joinBytes(reqs[next]!, bytes, admit.length);
        if (need === null) break;
        bytes += need;
        admit.push(next);
      }
      session.admit(
        admit.map((i) => reqs[i]!),
        (j, res) => {
          results[admit[j]!] = res;
        },
      );
      if (session.live) session.step();
    }
    return results;
  } finally {
    session.dispose();
  }
}

/** KV cache bytes a batch may hold at once (a wasm32 heap has 4 GiB in all). */
export const KV_BATCH_BYTES = 1 << 30;

/**
 * An upper bound on the KV cache bytes of a request's samples (prompt sharing aside). Tokens past
 * the context length count as none: such a request fails validation anyway.
 */
function kvCacheBytes(model: Transformer, req: SampleRequest): number {
  const T = req.prompt.length;
  const room = Math.max(0, req.maxContextLength - T);
  const maxTokens = Math.min(req.params.maxTokens ?? room, room);
  const samples = Math.min(Math.max(1, req.numSamples || 1), MAX_NUM_SAMPLES);
  return samples * (T + Math.max(0, maxTokens)) * model.kvDim * model.config.numLayers * 2 * 4;
}

/** A request being decoded: its parameters, its response so far and its samples still running. */
interface RequestState {
  req: SampleRequest;
  r: ResolvedRequest;
  out: SampleResponse;
  streams: Stream[];
  running: number;
  kvBytes: number;
  done: (res: SampleResponse) => void;
}

/** One sample being generated: its KV cache (in its own scratch), PRNG stream and tokens so far. */
interface Stream {
  owner: RequestState;
  /** The prompt key whose cache this sample holds (it took the prompt's prefix over). */
  holds?: string;
  cache: KvCache | null;
  scratch: Scratch | null;
  rng: SeededRng;
  tokens: number[];
  logprobs: number[];
  stop: StopReason | null;
}

/**
 * Sampling requests decoding together on one model and adapter, one token per live sample per
 * `step`. Requests can be admitted between steps (continuous batching): each distinct prompt among
 * the requests of one `admit` is prefilled once (members of an RL group share it and report it in
 * `promptCacheHitTokens`), and from then on its samples run in the same steps as everyone else's.
 * Decode steps are row-invariant (`Transformer.rowInvariant`), so no sample's tokens depend on what
 * it was decoded with. A sample's KV cache is freed when it stops; a request completes when its
 * last sample does.
 */
export class DecodeSession {
  private readonly streams: Stream[] = [];
  private readonly chooser = new TokenChooser();
  private kvBytes = 0;
  /**
   * Prompts whose cache a running sample holds (positions below the prompt's length never change
   * while it decodes), so a later request with the same prompt copies them instead of prefilling.
   */
  private readonly heldPrompts = new Map<string, { prompt: PromptState; holder: Stream }>();

  constructor(
    readonly model: Transformer,
    readonly adapter: LoraAdapter | null,
    readonly kvBudgetBytes = KV_BATCH_BYTES,
  ) {}

  /** True while some sample is still generating. */
  get live(): boolean {
    return this.streams.length > 0;
  }

  /**
   * The KV cache bytes `req` adds if it can join now, with `pendingBytes` of `pendingCount`
   * requests about to join too (within the KV budget, or alone: a request larger than the budget
   * runs by itself), else null.
   */
  joinBytes(req: SampleRequest, pendingBytes = 0, pendingCount = 0): number | null {
    const need = kvCacheBytes(this.model, req);
    if (this.streams.length === 0 && pendingCount === 0) return need;
    return this.kvBytes + pendingBytes + need <= this.kvBudgetBytes ? need : null;
  }

  /**
   * Validate and prefill `reqs` and start their samples. `done(i, result)` reports request i when
   * it completes or fails (possibly during this call: max_tokens 0, an immediate stop, bad input).
   */
  admit(
    reqs: readonly SampleRequest[],
    done: (i: number, res: SampleResponse | Error) => void,
  ): void {
    const { model } = this;
    const fail = (i: number, err: unknown) =>
      done(i, err instanceof Error ? err : new Error(String(err)));
    const states: Array<RequestState | null> = [];
    const room = new Map<string, number>();
    reqs.forEach((req, i) => {
      try {
        const r = resolve(req, model.config.vocabSize, model.config.eosTokenIds);
        const key = promptKey(req);
        room.set(key, Math.max(room.get(key) ?? 0, r.maxTokens));
        states.push({
          req,
          r,
          out: { sequences: [], promptCacheHitTokens: 0 },
          streams: [],
          running: 0,
          kvBytes: kvCacheBytes(model, req),
          done: (res) => done(i, res),
        });
      } catch (err) {
        states.push(null);
        fail(i, err);
      }
    });
    // Prefill each distinct prompt once.
    const prompts = new Map<string, PromptState>();
    states.forEach((st, i) => {
      if (!st) return;
      const key = promptKey(st.req);
      let prompt = prompts.get(key);
      const held = prompt ? undefined : this.heldPrompts.get(key);
      if (held) {
        // Borrowed from a running sample: every sample of this round copies it.
        prompt = { ...held.prompt, scratch: null, samples: 0, borrowed: true };
        prompts.set(key, prompt);
      }
      if (prompt) st.out.promptCacheHitTokens = st.req.prompt.length;
      else {
        try {
          prompt = prefill(model, this.adapter, st.req, room.get(key)!);
        } catch (err) {
          states[i] = null;
          fail(i, err);
          return;
        }
        prompts.set(key, prompt);
      }
      if (prompt.promptLogprobs) st.out.promptLogprobs = prompt.promptLogprobs;
      if (prompt.topkPromptLogprobs) st.out.topkPromptLogprobs = prompt.topkPromptLogprobs;
      prompt.samples += st.req.numSamples;
    });
    // Start the samples: every sample of a prompt but the last gets a copy of its cache; the last
    // takes it over (with the scratch holding it).
    for (const st of states) {
      if (!st) continue;
      const prompt = prompts.get(promptKey(st.req))!;
      const T = st.req.prompt.length;
      this.kvBytes += st.kvBytes;
      for (let i = 0; i < st.req.numSamples; i++) {
        const q: Stream = {
          owner: st,
          cache: null,
          scratch: null,
          rng: new SeededRng(st.r.seed, i),
          tokens: [],
          logprobs: [],
          stop: st.r.maxTokens === 0 ? "length" : null,
        };
        const last = --prompt.samples === 0 && !prompt.borrowed;
        if (last) {
          q.cache = prompt.prefix;
          q.scratch = prompt.scratch;
          if (q.stop === null) {
            q.holds = promptKey(st.req);
            this.heldPrompts.set(q.holds, { prompt, holder: q });
          }
        } else if (q.stop === null) {
          q.scratch = model.scratch();
          q.cache = model.allocCache(T + st.r.maxTokens, q.scratch);
          const prefLen = T * model.kvDim;
          for (let l = 0; l < model.config.numLayers; l++) {
            q.cache.k[l]!.set(prompt.prefix.k[l]!.subarray(0, prefLen));
            q.cache.v[l]!.set(prompt.prefix.v[l]!.subarray(0, prefLen));
          }
        }
        st.streams.push(q);
        st.running++;
        if (q.stop === null) this.accept(q, prompt.lastRow);
        if (q.stop === null) this.streams.push(q);
        else this.finish(q);
      }
    }
  }

  /** One decode step: every live sample gets its next token. */
  step(): void {
    const { model, adapter } = this;
    const live = this.streams;
    if (live.length === 0) return;
    model.rowInvariant(() => {
      const tokens = Int32Array.from(live, (q) => q.tokens.at(-1)!);
      const spans: SeqSpan[] = live.map((q, j) => ({
        start: j,
        len: 1,
        cache: q.cache!,
        cacheOffset: q.owner.req.prompt.length + q.tokens.length - 1,
      }));
      const st = model.forward(tokens, spans, adapter, false);
      try {
        model.forEachLogitsRow(st.xf, live.length, adapter, 0, (row, i) =>
          this.accept(live[i]!, row),
        );
      } finally {
        st.scratch.release();
      }
    });
    const stopped = live.filter((q) => q.stop !== null);
    if (stopped.length === 0) return;
    const running = live.filter((q) => q.stop === null);
    live.length = 0;
    live.push(...running);
    for (const q of stopped) this.finish(q);
  }

  /** Free every cache (the session is unusable afterwards). */
  dispose(): void {
    this.heldPrompts.clear();
    for (const q of this.streams) q.scratch?.release();
    this.streams.length = 0;
  }

  private accept(q: Stream, row: Float32Array): void {
    const { r, req } = q.owner;
    const { token: tok, logprob } = this.chooser.choose(row, r.choice, q.rng);
    q.tokens.push(tok);
    q.logprobs.push(logprob);
    if (r.stopIds.has(tok)) q.stop = "stop";
    else if (r.maxStop > 0 && req.decode) {
      const window = q.tokens.slice(-Math.min(q.tokens.length, 4 * r.maxStop + 8));
      const text = req.decode(window);
      if (r.stopStrings.some((x) => text.includes(x))) q.stop = "stop";
    }
    if (!q.stop && q.tokens.length >= r.maxTokens) q.stop = "length";
  }

  /** A stopped sample: free its cache; complete its request when it was the last one running. */
  private finish(q: Stream): void {
    if (q.holds !== undefined && this.heldPrompts.get(q.holds)?.holder === q) {
      this.heldPrompts.delete(q.holds);
    }
    q.scratch?.release();
    q.scratch = null;
    q.cache = null;
    const st = q.owner;
    if (--st.running > 0) return;
    this.kvBytes -= st.kvBytes;
    st.out.sequences = st.streams.map((x) => ({
      stopReason: x.stop ?? "length",
      tokens: x.tokens,
      logprobs: x.logprobs,
    }));
    st.done(st.out);
  }
}

/** Requests share a prefill when their prompts and prompt-logprob options are the same. */
function promptKey(req: SampleRequest): string {
  return `${req.promptLogprobs ? 1 : 0}:${req.topkPromptLogprobs}:${req.prompt.join(",")}`;
}

/** A prefilled prompt: its KV cache, its last row's logits and the prompt logprobs asked for. */
interface PromptState {
  /** Holds `prefix`; passed on to the sample that takes the prefix over (null when borrowed). */
  scratch: Scratch | null;
  /** The prefix belongs to a running sample: samples copy it, none takes it over. */
  borrowed?: boolean;
  prefix: KvCache;
  lastRow: Float32Array;
  promptLogprobs?: Array<number | null>;
  topkPromptLogprobs?: Array<Array<[number, number]> | null>;
  /** Samples that start from this prompt (the last one takes over `prefix`, the others copy it). */
  samples: number;
}

function prefill(
  model: Transformer,
  adapter: LoraAdapter | null,
  req: SampleRequest,
  maxTokens: number,
): PromptState {
  const _c = model.config;
  const T = req.prompt.length;
  const scratch = model.scratch();
  const prefix = model.allocCache(T + maxTokens, scratch);
  let pre: ForwardState;
  try {
    pre = model.forward(
      req.prompt,
      [{ start: 0, len: T, cache: prefix, cacheOffset: 0 }],
      adapter,
      false,
    );
  } catch (err) {
    scratch.release();
    throw err;
  }
  try {
    const wantPrompt = req.promptLogprobs || req.topkPromptLogprobs > 0;
    const promptLp: Array<number | null> = [null];
    const promptTopk: Array<Array<[number, number]> | null> = [null];
    // Rows 0..T-2 predict prompt tokens 1..T-1; row T-1 predicts the first sampled token.
    let lastRow: Float32Array | null = null;
    model.forEachLogitsRow(pre.xf, T, adapter, wantPrompt ? 0 : T - 1, (row, pos) => {
      if (pos === T - 1) {
        lastRow = row.slice();
        return;
      }
      const lse = rowLogSumExp(row);
      if (req.promptLogprobs) promptLp.push(row[req.prompt[pos + 1]!]! - lse);
      if (req.topkPromptLogprobs > 0) {
        const top = Array.from(topKIndices(row, req.topkPromptLogprobs))
          .map((t): [number, number] => [t, row[t]! - lse])
          .sort((a, b) => b[1] - a[1] || a[0] - b[0]);
        promptTopk.push(top);
      }
    });
    return {
      scratch,
      prefix,
      lastRow: lastRow!,
      ...(req.promptLogprobs ? { promptLogprobs: promptLp } : {}),
      ...(req.topkPromptLogprobs > 0 ? { topkPromptLogprobs: promptTopk } : {}),
      samples: 0,
    };
  } finally {
    pre.scratch.release();
  }
}

function resolve(req: SampleRequest, vocab: number, eos: readonly number[]): ResolvedRequest {
  const bad = (field: string, msg: string): never => {
    throw new TinkerValidationError(msg, field);
  };
  const T = req.prompt.length;
  if (T === 0) bad("prompt", "prompt is empty: pass at least one token");
  for (let i = 0; i < T; i++) {
    const t = req.prompt[i]!;
    if (!(t >= 0 && t < vocab))
      bad(
        "prompt",
        `prompt[${i}] = ${t} is not a token id of this model (vocabulary size ${vocab})`,
      );
  }
  if (!Number.isInteger(req.numSamples) || req.numSamples < 1 || req.numSamples > MAX_NUM_SAMPLES) {
    bad(
      "num_samples",
      `num_samples must be an integer in [1, ${MAX_NUM_SAMPLES}], got ${req.numSamples}`,
    );
  }
  const p = req.params;
  const room = req.maxContextLength - T;
  if (room < 0) {
    bad(
      "prompt",
      `prompt has ${T} tokens, more than the model's context length ${req.maxContextLength}; shorten it`,
    );
  }
  const maxTokens = p.maxTokens ?? room;
  if (!Number.isInteger(maxTokens) || maxTokens < 0)
    bad("max_tokens", `max_tokens must be an integer >= 0, got ${p.maxTokens}`);
  if (maxTokens > room) {
    bad(
      "max_tokens",
      `prompt (${T} tokens) + max_tokens (${maxTokens}) exceeds the model's context length ${req.maxContextLength}; lower max_tokens to at most ${room}`,
    );
  }
  const temperature = p.temperature ?? 1;
  if (!Number.isFinite(temperature) || temperature < 0)
    bad("temperature", `temperature must be a finite number >= 0, got ${temperature}`);
  const topK = p.topK ?? -1;
  if (!Number.isInteger(topK) || topK < -1)
    bad("top_k", `top_k must be -1 (no limit) or a positive integer, got ${topK}`);
  const topP = p.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) bad("top_p", `top_p must be in (0, 1], got ${topP}`);
  const k = req.topkPromptLogprobs;
  if (!Number.isInteger(k) || k < 0 || k > vocab)
    bad(
      "topk_prompt_logprobs",
      `topk_prompt_logprobs must be an integer in [0, ${vocab}], got ${k}`,
    );
  const stopIds = new Set<number>(eos);
  const stopStrings: string[] = [];
  const stop = p.stop === undefined ? [] : typeof p.stop === "string" ? [p.stop] : [...p.stop];
  for (const x of stop) {
    if (typeof x === "number") {
      if (!Number.isInteger(x) || x < 0 || x >= vocab)
        bad("stop", `stop token ${x} is not a token id of this model (vocabulary size ${vocab})`);
      stopIds.add(x);
    } else if (typeof x === "string") {
      if (x.length === 0) bad("stop", "stop strings must not be empty");
      stopStrings.push(x);
    } else bad("stop", "stop must be a string, a list of strings or a list of token ids");
  }
  if (stopStrings.length > 0 && !req.decode) {
    bad(
      "stop",
      "stop strings need the base model's tokenizer, which this model does not have; pass stop token ids instead",
    );
  }
  const seed = p.seed ?? randomSeed();
  if (!Number.isFinite(seed)) bad("seed", `seed must be an integer, got ${seed}`);
  const maxStop = stopStrings.reduce((m, x) => Math.max(m, x.length), 0);
  return { choice: { temperature, topK, topP }, maxTokens, seed, stopIds, stopStrings, maxStop };
}

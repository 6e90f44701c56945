import { TinkerValidationError } from "../../../client/errors.js";
import type { SampleResponse, StopReason } from "../../../client/types/outputs.js";
import type { SamplingParams } from "../../../client/types/params.js";
import type { LoraAdapter } from "../model/lora.js";
import { randomSeed, SeededRng } from "../model/prng.js";
import {
  headBlockRows,
  type KvCache,
  type Scratch,
  type SeqSpan,
  type Transformer,
} from "../model/transformer.js";
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
 * `sample` for several requests on the same model and adapter at once: each distinct prompt is
 * prefilled once (requests with the same prompt, such as the members of an RL group, share it and
 * report it in `promptCacheHitTokens`), then every sample of every request decodes in the same
 * steps (one pass over the weights per step for all of them). Results are what `sample` gives for
 * each request alone, bit for bit; a request that fails validation gets its error in its slot and
 * does not affect the others.
 */
export function sampleBatch(
  model: Transformer,
  adapter: LoraAdapter | null,
  reqs: readonly SampleRequest[],
  kvBudgetBytes = KV_BATCH_BYTES,
): Array<SampleResponse | Error> {
  // Requests decode together only while their KV caches fit the budget; the rest go in later
  // batches (results are the same either way: decoding is row-invariant).
  const results: Array<SampleResponse | Error> = [];
  let chunk: SampleRequest[] = [];
  let bytes = 0;
  for (const req of reqs) {
    const need = kvCacheBytes(model, req);
    if (chunk.length > 0 && bytes + need > kvBudgetBytes) {
      results.push(...decodeTogether(model, adapter, chunk));
      chunk = [];
      bytes = 0;
    }
    chunk.push(req);
    bytes += need;
  }
  if (chunk.length > 0) results.push(...decodeTogether(model, adapter, chunk));
  return results;
}

/** KV cache bytes a batch may hold at once (a wasm32 heap has 4 GiB in all). */
export const KV_BATCH_BYTES = 1 << 30;

/** An upper bound on the KV cache bytes of a request's samples (prompt sharing aside). */
function kvCacheBytes(model: Transformer, req: SampleRequest): number {
  const T = req.prompt.length;
  const maxTokens = req.params.maxTokens ?? Math.max(0, req.maxContextLength - T);
  const samples = Math.min(Math.max(1, req.numSamples || 1), MAX_NUM_SAMPLES);
  return samples * (T + Math.max(0, maxTokens)) * model.kvDim * model.config.numLayers * 2 * 4;
}

function decodeTogether(
  model: Transformer,
  adapter: LoraAdapter | null,
  reqs: readonly SampleRequest[],
): Array<SampleResponse | Error> {
  const s = model.scratch();
  try {
    const results: Array<SampleResponse | Error> = [];
    const resolved: Array<{ req: SampleRequest; r: ResolvedRequest; key: string }> = [];
    const room = new Map<string, number>();
    for (const req of reqs) {
      try {
        const r = resolve(req, model.config.vocabSize, model.config.eosTokenIds);
        const key = promptKey(req);
        room.set(key, Math.max(room.get(key) ?? 0, r.maxTokens));
        resolved.push({ req, r, key });
        results.push({ sequences: [], promptCacheHitTokens: 0 });
      } catch (err) {
        results.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    const prompts = new Map<string, PromptState>();
    const prefilled: Prefilled[] = [];
    let k = 0;
    for (let i = 0; i < reqs.length; i++) {
      const res = results[i]!;
      if (res instanceof Error) continue;
      const { req, r, key } = resolved[k++]!;
      let prompt = prompts.get(key);
      if (prompt) res.promptCacheHitTokens = req.prompt.length;
      else {
        try {
          prompt = prefill(model, adapter, req, room.get(key)!, s);
        } catch (err) {
          results[i] = err instanceof Error ? err : new Error(String(err));
          continue;
        }
        prompts.set(key, prompt);
      }
      if (prompt.promptLogprobs) res.promptLogprobs = prompt.promptLogprobs;
      if (prompt.topkPromptLogprobs) res.topkPromptLogprobs = prompt.topkPromptLogprobs;
      prompt.samples += req.numSamples;
      prefilled.push({ req, r, prompt, out: res });
    }
    decodeAll(model, adapter, prefilled, s);
    return results;
  } finally {
    s.release();
  }
}

/** Requests share a prefill when their prompts and prompt-logprob options are the same. */
function promptKey(req: SampleRequest): string {
  return `${req.promptLogprobs ? 1 : 0}:${req.topkPromptLogprobs}:${req.prompt.join(",")}`;
}

/** A prefilled prompt: its KV cache, its last row's logits and the prompt logprobs asked for. */
interface PromptState {
  prefix: KvCache;
  lastRow: Float32Array;
  promptLogprobs?: Array<number | null>;
  topkPromptLogprobs?: Array<Array<[number, number]> | null>;
  /** Samples that start from this prompt (the last one takes over `prefix`, the others copy it). */
  samples: number;
}

/** A request ready to decode: its parameters, its prompt's state and its response so far. */
interface Prefilled {
  req: SampleRequest;
  r: ResolvedRequest;
  prompt: PromptState;
  out: SampleResponse;
}

function prefill(
  model: Transformer,
  adapter: LoraAdapter | null,
  req: SampleRequest,
  maxTokens: number,
  s: Scratch,
): PromptState {
  const c = model.config;
  const V = c.vocabSize;
  const T = req.prompt.length;
  const prefix = model.allocCache(T + maxTokens, s);
  const pre = model.forward(
    req.prompt,
    [{ start: 0, len: T, cache: prefix, cacheOffset: 0 }],
    adapter,
    false,
  );
  const blocks = model.scratch();
  try {
    const rank = adapter?.lora.rank ?? 0;
    const blockRows = headBlockRows(V, T);
    const logits = blocks.alloc(blockRows * V);
    const hLm = adapter?.lmHead ? blocks.alloc(blockRows * rank) : undefined;
    const d = c.hiddenSize;
    const wantPrompt = req.promptLogprobs || req.topkPromptLogprobs > 0;
    const promptLp: Array<number | null> = [null];
    const promptTopk: Array<Array<[number, number]> | null> = [null];
    // Rows 0..T-2 predict prompt tokens 1..T-1; row T-1 predicts the first sampled token.
    const firstRows = wantPrompt ? 0 : T - 1;
    let lastRow: Float32Array | null = null;
    for (let r0 = firstRows; r0 < T; r0 += blockRows) {
      const nb = Math.min(blockRows, T - r0);
      model.logits(
        pre.xf.subarray(r0 * d, (r0 + nb) * d),
        nb,
        adapter,
        logits.subarray(0, nb * V),
        hLm,
      );
      for (let j = 0; j < nb; j++) {
        const row = logits.subarray(j * V, (j + 1) * V);
        const pos = r0 + j;
        if (pos === T - 1) {
          lastRow = row.slice();
          continue;
        }
        const lse = rowLogSumExp(row);
        if (req.promptLogprobs) promptLp.push(row[req.prompt[pos + 1]!]! - lse);
        if (req.topkPromptLogprobs > 0) {
          const top = Array.from(topKIndices(row, req.topkPromptLogprobs))
            .map((t): [number, number] => [t, row[t]! - lse])
            .sort((a, b) => b[1] - a[1] || a[0] - b[0]);
          promptTopk.push(top);
        }
      }
    }
    return {
      prefix,
      lastRow: lastRow!,
      ...(req.promptLogprobs ? { promptLogprobs: promptLp } : {}),
      ...(req.topkPromptLogprobs > 0 ? { topkPromptLogprobs: promptTopk } : {}),
      samples: 0,
    };
  } finally {
    blocks.release();
    pre.scratch.release();
  }
}

/** One sample being generated: its request, KV cache, PRNG stream and tokens so far. */
interface Stream {
  p: Prefilled;
  cache: KvCache;
  rng: SeededRng;
  tokens: number[];
  logprobs: number[];
  stop: StopReason | null;
}

function decodeAll(
  model: Transformer,
  adapter: LoraAdapter | null,
  reqs: readonly Prefilled[],
  s: Scratch,
): void {
  const c = model.config;
  const V = c.vocabSize;
  const d = c.hiddenSize;
  const chooser = new TokenChooser();
  const accept = (q: Stream, row: Float32Array): void => {
    const { r, req } = q.p;
    const { token: tok, logprob } = chooser.choose(row, r.choice, q.rng);
    q.tokens.push(tok);
    q.logprobs.push(logprob);
    if (r.stopIds.has(tok)) q.stop = "stop";
    else if (r.maxStop > 0 && req.decode) {
      const window = q.tokens.slice(-Math.min(q.tokens.length, 4 * r.maxStop + 8));
      const text = req.decode(window);
      if (r.stopStrings.some((x) => text.includes(x))) q.stop = "stop";
    }
    if (!q.stop && q.tokens.length >= r.maxTokens) q.stop = "length";
  };
  const streams: Stream[] = [];
  const byRequest: Stream[][] = [];
  for (const p of reqs) {
    const n = p.req.numSamples;
    const T = p.req.prompt.length;
    const own: Stream[] = [];
    for (let i = 0; i < n; i++) {
      const q: Stream = {
        p,
        cache: p.prompt.prefix,
        rng: new SeededRng(p.r.seed, i),
        tokens: [],
        logprobs: [],
        stop: p.r.maxTokens === 0 ? "length" : null,
      };
      // Every sample of a prompt but the last gets a copy of its cache; the last takes it over.
      const last = --p.prompt.samples === 0;
      if (q.stop === null) {
        if (!last) {
          q.cache = model.allocCache(T + p.r.maxTokens, s);
          const prefLen = T * model.kvDim;
          for (let l = 0; l < c.numLayers; l++) {
            q.cache.k[l]!.set(p.prompt.prefix.k[l]!.subarray(0, prefLen));
            q.cache.v[l]!.set(p.prompt.prefix.v[l]!.subarray(0, prefLen));
          }
        }
        accept(q, p.prompt.lastRow);
      }
      own.push(q);
      streams.push(q);
    }
    byRequest.push(own);
  }

  const blockRows = headBlockRows(V, streams.length);
  const logits = s.alloc(blockRows * V);
  const hLm = adapter?.lmHead ? s.alloc(blockRows * adapter.lora.rank) : undefined;
  model.rowInvariant(() => {
    for (;;) {
      const live = streams.filter((q) => !q.stop);
      if (live.length === 0) break;
      const tokens = Int32Array.from(live, (q) => q.tokens.at(-1)!);
      const spans: SeqSpan[] = live.map((q, j) => ({
        start: j,
        len: 1,
        cache: q.cache,
        cacheOffset: q.p.req.prompt.length + q.tokens.length - 1,
      }));
      const st = model.forward(tokens, spans, adapter, false);
      try {
        for (let r0 = 0; r0 < live.length; r0 += blockRows) {
          const nb = Math.min(blockRows, live.length - r0);
          model.logits(
            st.xf.subarray(r0 * d, (r0 + nb) * d),
            nb,
            adapter,
            logits.subarray(0, nb * V),
            hLm,
          );
          for (let j = 0; j < nb; j++) accept(live[r0 + j]!, logits.subarray(j * V, (j + 1) * V));
        }
      } finally {
        st.scratch.release();
      }
    }
  });
  reqs.forEach((p, i) => {
    p.out.sequences = byRequest[i]!.map((q) => ({
      stopReason: q.stop ?? "length",
      tokens: q.tokens,
      logprobs: q.logprobs,
    }));
  });
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

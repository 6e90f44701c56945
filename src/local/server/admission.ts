import type { BaseModelInfo, ModelMemory, ResolvedLoraConfig } from "../engine/api.js";
import { badRequest, type HttpError } from "./http-error.js";

/**
 * Admission control: a request whose engine memory need cannot fit is refused when it is sent,
 * with the limit and what to lower, instead of running for a while and then failing to grow the
 * engine heap (which keeps whatever it grew to for the life of the process).
 */

const MiB = 1024 * 1024;
const mib = (b: number): string => `${Math.ceil(b / MiB)} MiB`;

/** Heap a LoRA adapter of `lora` takes (weights, gradients, AdamW moments). */
export function adapterBytes(mem: ModelMemory, lora: ResolvedLoraConfig): number {
  const r = lora.rank;
  const per = mem.adapterBytesPerRank;
  return (
    r *
    ((lora.trainAttn ? per.attn : 0) +
      (lora.trainMlp ? per.mlp : 0) +
      (lora.trainUnembed ? per.unembed : 0))
  );
}

/** The vocabulary projection block of a pass over `tokens` tokens. */
function headBytes(mem: ModelMemory, tokens: number): number {
  return Math.min(tokens * mem.headBytesPerToken, mem.headBytesMax);
}

/** What is already held (base weights of the models in use, live adapters) and the budget. */
export interface HeldMemory {
  bytes: number;
  /** For messages, e.g. "base weights and 2 loaded model(s)". */
  what: string;
  /** Engine memory requests may use in all; default 80% of the heap limit. */
  budgetBytes?: number | undefined;
}

/** The budget in use. */
function limit(mem: ModelMemory, held: HeldMemory): number {
  // A margin for the heap allocator's size classes and what the estimates leave out.
  return held.budgetBytes ?? Math.floor(mem.heapLimitBytes * 0.8);
}

function free(mem: ModelMemory, held: HeldMemory): number {
  return limit(mem, held) - held.bytes;
}

function refuse(message: string): HttpError {
  return badRequest(message);
}

export function checkCreateModel(
  base: BaseModelInfo,
  lora: ResolvedLoraConfig,
  held: HeldMemory,
): void {
  const mem = base.memory;
  if (!mem) return;
  const need = adapterBytes(mem, lora);
  if (need <= free(mem, held)) return;
  throw refuse(
    `a rank-${lora.rank} LoRA on ${base.name} needs ${mib(need)} of engine memory, but only ${mib(Math.max(0, free(mem, held)))} of the ${mib(limit(mem, held))} limit are free (${held.what} hold the rest); lower lora_config.rank, train fewer modules (train_unembed / train_mlp / train_attn), or unload other models`,
  );
}

/** forward / forward_backward over `tokens` tokens in all. */
export function checkForwardBackward(
  base: BaseModelInfo,
  rank: number,
  tokens: number,
  backward: boolean,
  held: HeldMemory,
): void {
  const mem = base.memory;
  if (!mem) return;
  const perToken = backward
    ? mem.trainBytesPerToken + mem.trainBytesPerTokenPerRank * rank
    : mem.forwardBytesPerToken;
  const head = headBytes(mem, tokens);
  const need = tokens * perToken + head;
  if (need <= free(mem, held)) return;
  const fit = Math.max(0, Math.floor((free(mem, held) - mem.headBytesMax) / perToken));
  throw refuse(
    `this ${backward ? "forward_backward" : "forward"} batch of ${tokens} tokens needs about ${mib(need)} of engine memory, more than the ${mib(Math.max(0, free(mem, held)))} free of the ${mib(limit(mem, held))} limit (${held.what} hold the rest); send fewer or shorter datums per call (about ${fit} tokens fit now)`,
  );
}

/** A sample: the prompt's prefill plus the KV cache of every sample. */
export function checkSample(
  base: BaseModelInfo,
  promptTokens: number,
  numSamples: number,
  maxTokens: number | undefined,
  held: HeldMemory,
): void {
  const mem = base.memory;
  if (!mem) return;
  const room = Math.max(0, base.maxContextLength - promptTokens);
  const gen = Math.min(maxTokens ?? room, room);
  const kv = numSamples * (promptTokens + gen) * mem.kvBytesPerToken;
  const need = kv + promptTokens * mem.forwardBytesPerToken + headBytes(mem, promptTokens);
  if (need <= free(mem, held)) return;
  throw refuse(
    `this sample (${numSamples} samples of up to ${promptTokens + gen} tokens) needs about ${mib(need)} of engine memory, more than the ${mib(Math.max(0, free(mem, held)))} free of the ${mib(limit(mem, held))} limit (${held.what} hold the rest); lower num_samples or max_tokens, or shorten the prompt`,
  );
}

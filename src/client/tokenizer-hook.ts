import {
  resolveTokenizerId as mapModelNameToTokenizerId,
  PRESET_TOKENIZER_NAMES,
} from "../tokenizers/names.js";

/**
 * The minimal tokenizer surface the client needs. The tokenizers module of tinker-ts provides
 * real implementations; any object with these methods works.
 */
export interface Tokenizer {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean }): string;
}

/** Loads a tokenizer by Hugging Face id (e.g. `Qwen/Qwen3-8B`). */
export type TokenizerLoader<T = Tokenizer> = (id: string) => Promise<T>;

/**
 * The tokenizer id for a model, by the reference's rules: the server's `tokenizer_id` when given
 * (cut at the first `:`; not for the local presets, whose tokenizers load offline by model name),
 * else the model name mapped by the tokenizers module
 * (`:suffix` dropped, Llama-3 to the ungated mirror, `org/model/variant` to `org/model`).
 */
export function resolveTokenizerId(modelName: string, tokenizerId?: string | null): string {
  if (tokenizerId && !PRESET_TOKENIZER_NAMES.includes(modelName)) return tokenizerId.split(":")[0]!;
  return mapModelNameToTokenizerId(modelName);
}

/**
 * Used when no `tokenizerLoader` was configured: the tokenizers module's `loadTokenizer` (registry,
 * local folder, Hugging Face cache, then the hub), loaded on first use so clients that never ask
 * for a tokenizer do not pay for it.
 */
export const defaultTokenizerLoader: TokenizerLoader<Tokenizer> = async (id) => {
  const { loadTokenizer } = await import("../tokenizers/loader.js");
  return loadTokenizer(id);
};

/** Caches one load per id (concurrent callers share it; failures are not cached). */
export class TokenizerCache<T> {
  private readonly cache = new Map<string, Promise<T>>();
  constructor(private readonly loader: TokenizerLoader<T>) {}

  get(id: string): Promise<T> {
    let p = this.cache.get(id);
    if (!p) {
      p = this.loader(id);
      this.cache.set(id, p);
      p.catch(() => this.cache.delete(id));
    }
    return p;
  }
}

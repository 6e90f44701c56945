import { TinkerError } from "./errors.js";

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
 * (cut at the first `:`), else the model name cut at `:`; Llama-3 names map to the ungated copy
 * `thinkingmachineslabinc/meta-llama-3-instruct-tokenizer`; `org/model/variant` becomes
 * `org/model`.
 */
export function resolveTokenizerId(modelName: string, tokenizerId?: string | null): string {
  if (tokenizerId) return tokenizerId.split(":")[0]!;
  const name = modelName.split(":")[0]!;
  if (name.startsWith("meta-llama/Llama-3")) {
    return "thinkingmachineslabinc/meta-llama-3-instruct-tokenizer";
  }
  const parts = name.split("/");
  if (parts.length === 3) return `${parts[0]}/${parts[1]}`;
  return name;
}

/** Used when no `tokenizerLoader` was configured. */
export const missingTokenizerLoader: TokenizerLoader<never> = async (id) => {
  throw new TinkerError(
    `No tokenizer loader is configured, so the tokenizer "${id}" cannot be loaded. ` +
      "Pass { tokenizerLoader } to ServiceClient (the tokenizers module of tinker-ts provides one).",
  );
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

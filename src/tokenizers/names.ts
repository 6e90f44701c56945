/** The ungated mirror of the Llama 3 instruct tokenizer, used for every `meta-llama/Llama-3*` name. */
export const LLAMA3_TOKENIZER_MIRROR = "thinkingmachineslabinc/meta-llama-3-instruct-tokenizer";

/**
 * The local engine's presets, whose tokenizers load by model name without the network (the
 * server reports tiny-qwen3's hub id, Qwen/Qwen3-0.6B, for other clients such as the Python SDK).
 */
export const PRESET_TOKENIZER_NAMES: readonly string[] = ["tiny-bytes", "tiny-qwen3"];

/**
 * Map a model name to the id its tokenizer is loaded from, as the reference SDK does:
 * drop any `:suffix` (e.g. `:peft:131072`), send `meta-llama/Llama-3*` to the instruct tokenizer
 * mirror (base models get the chat special tokens too), and shorten `org/model/variant` to
 * `org/model`. Local paths (starting with `/`, `./`, `../` or `~`) are returned unchanged.
 */
export function resolveTokenizerId(modelName: string): string {
  if (isLocalPath(modelName)) return modelName;
  const base = modelName.split(":")[0] ?? modelName;
  if (base.startsWith("meta-llama/Llama-3")) return LLAMA3_TOKENIZER_MIRROR;
  const parts = base.split("/");
  if (parts.length === 3) return `${parts[0]}/${parts[1]}`;
  return base;
}

/** Whether `id` names a folder on disk rather than a hub repository. */
export function isLocalPath(id: string): boolean {
  return (
    id.startsWith("/") ||
    id.startsWith("./") ||
    id.startsWith("../") ||
    id.startsWith("~") ||
    /^[A-Za-z]:[\\/]/.test(id)
  );
}

export { HfTokenizer, type TokenizerConfigJson } from "./hf-tokenizer.js";
export * from "./loader.js";
export { LLAMA3_TOKENIZER_MIRROR, resolveTokenizerId } from "./names.js";
export * from "./types.js";

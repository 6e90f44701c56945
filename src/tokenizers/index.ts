// The full tokenizer interface is exported as `ChatTokenizer`: the package root already exports
// the client's minimal `Tokenizer` (encode/decode), which every `ChatTokenizer` satisfies.
export { HfTokenizer, type TokenizerConfigJson } from "./hf-tokenizer.js";
export {
  clearTokenizerCache,
  getRegisteredTokenizerNames,
  isTokenizerRegistered,
  type LoadTokenizerOptions,
  loadTokenizer,
  loadTokenizerFromDir,
  registerTokenizer,
  type TokenizerFactory,
  TokenizerLoadError,
  unregisterTokenizer,
} from "./loader.js";
export { LLAMA3_TOKENIZER_MIRROR } from "./names.js";
export type {
  ChatTemplateOptions,
  DecodeOptions,
  EncodeOptions,
  TemplateMessage,
  Tokenizer as ChatTokenizer,
} from "./types.js";

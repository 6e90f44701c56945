import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import type { Decode } from "../sampling/sampler.js";

/**
 * A token-ids-to-text function from the `tokenizer.json` / `tokenizer_config.json` in `dir`, for
 * stop strings. Special tokens are kept in the text, so a stop string such as "<|im_end|>" matches.
 */
export async function loadDecoder(dir: string): Promise<Decode> {
  const json = JSON.parse(await readFile(join(dir, "tokenizer.json"), "utf8")) as object;
  let config: object = {};
  try {
    config = JSON.parse(await readFile(join(dir, "tokenizer_config.json"), "utf8")) as object;
  } catch {
    // tokenizer_config.json is optional for decoding.
  }
  const tok = new Tokenizer(json, config);
  return (ids) => tok.decode([...ids], { skip_special_tokens: false });
}

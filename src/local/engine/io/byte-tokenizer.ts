import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  replaceDirAtomic,
  tempSiblingPath,
  tinkerCacheDir,
  writeDirOnce,
} from "../../../fs/atomic.js";

/**
 * The byte-level tokenizer of the `tiny-bytes` preset: token id b (0..255) is the byte b of the
 * UTF-8 text, so any text round-trips; ids 256.. are special tokens. Chat uses ChatML markers:
 * `<|im_start|>{role}\n{content}<|im_end|>\n`.
 */
export const TINY_BYTES_SPECIAL_TOKENS = [
  { id: 256, content: "<|bos|>", special: true },
  { id: 257, content: "<|eos|>", special: true },
  { id: 258, content: "<|pad|>", special: true },
  { id: 259, content: "<|im_start|>", special: true },
  { id: 260, content: "<|im_end|>", special: true },
  { id: 261, content: "<think>", special: false },
  { id: 262, content: "</think>", special: false },
  { id: 263, content: "<|reserved_0|>", special: true },
] as const;

/** Number of token ids of the tiny-bytes tokenizer (256 bytes + specials). */
export const TINY_BYTES_VOCAB_SIZE = 256 + TINY_BYTES_SPECIAL_TOKENS.length;

/** Token ids of the tiny-bytes tokenizer's special tokens, by role. */
export const TINY_BYTES_IDS = { bos: 256, eos: 257, pad: 258, imStart: 259, imEnd: 260 } as const;

/** Version tag of the generated files; bump when their content changes (it names the cache dir). */
const VERSION = "v1";

/**
 * GPT-2's reversible byte -> printable character map used by ByteLevel tokenizers: printable
 * Latin-1 bytes map to themselves, the rest to code points from 256 up.
 */
export function byteToUnicode(): string[] {
  const keep = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep(b) ? b : next++);
  return out;
}

const CHAT_TEMPLATE =
  "{% for message in messages %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The contents of `tokenizer.json` and `tokenizer_config.json` for tiny-bytes (deterministic). */
export function tinyBytesTokenizerFiles(): {
  "tokenizer.json": string;
  "tokenizer_config.json": string;
} {
  const chars = byteToUnicode();
  const vocab: Record<string, number> = {};
  chars.forEach((c, b) => {
    vocab[c] = b;
  });
  const byteLevel = {
    type: "ByteLevel",
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: false,
  };
  const added = TINY_BYTES_SPECIAL_TOKENS.map((t) => ({
    id: t.id,
    content: t.content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: t.special,
  }));
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const addedDecoder: Record<string, unknown> = {};
  for (const t of added) {
    const { id, ...rest } = t;
    addedDecoder[String(id)] = rest;
  }
  const config = {
    tokenizer_class: "PreTrainedTokenizerFast",
    add_bos_token: false,
    add_eos_token: false,
    bos_token: "<|bos|>",
    eos_token: "<|im_end|>",
    pad_token: "<|pad|>",
    unk_token: null,
    model_max_length: 2048,
    clean_up_tokenization_spaces: false,
    added_tokens_decoder: addedDecoder,
    chat_template: CHAT_TEMPLATE,
  };
  return {
    "tokenizer.json": `${JSON.stringify(tokenizer, null, 2)}\n`,
    "tokenizer_config.json": `${JSON.stringify(config, null, 2)}\n`,
  };
}

/**
 * Write the tiny-bytes tokenizer files once into `<cacheDir>/tokenizers/tiny-bytes-v1/` (atomic;
 * concurrent callers are safe; a damaged copy is replaced) and return that folder.
 * `cacheDir` defaults to `tinkerCacheDir`.
 */
export async function ensureTinyBytesTokenizer(
  cacheDir: string = tinkerCacheDir(),
): Promise<string> {
  const dir = join(cacheDir, "tokenizers", `tiny-bytes-${VERSION}`);
  const files = tinyBytesTokenizerFiles();
  const write = async (tmp: string) => {
    for (const [name, text] of Object.entries(files)) await writeFile(join(tmp, name), text);
  };
  if (await writeDirOnce(dir, write)) return dir;
  for (const [name, text] of Object.entries(files)) {
    const current = await readFile(join(dir, name), "utf8").catch(() => undefined);
    if (current !== text) {
      const tmp = tempSiblingPath(dir);
      await mkdir(tmp);
      await write(tmp);
      await replaceDirAtomic(tmp, dir);
      break;
    }
  }
  return dir;
}

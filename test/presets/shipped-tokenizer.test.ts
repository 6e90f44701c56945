/**
 * The Qwen3 tokenizer as the built package ships it (brotli tokenizer.json + tokenizer_config.json,
 * written by scripts/postbuild.mjs the same way): unpacked once into the cache, reused, repaired
 * when damaged, and identical in its encoding to the devDependency's files.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync, constants } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { qwen3TokenizerFromNpm } from "../../src/local/engine/io/presets.js";
import { loadTokenizerFromDir } from "../../src/tokenizers/loader.js";
import { shippedQwen3TokenizerDir } from "../../src/tokenizers/shipped.js";

describe("shipped Qwen3 tokenizer", () => {
  let work: string;
  let asset: string;
  const npm = qwen3TokenizerFromNpm()!;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "tinker-ts-shipped-"));
    asset = join(work, "assets", "qwen3-tokenizer");
    await mkdir(asset, { recursive: true });
    const json = JSON.stringify(JSON.parse(await readFile(join(npm, "tokenizer.json"), "utf8")));
    await writeFile(
      join(asset, "tokenizer.json.br"),
      brotliCompressSync(Buffer.from(json), { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } }),
    );
    await writeFile(
      join(asset, "tokenizer_config.json"),
      await readFile(join(npm, "tokenizer_config.json")),
    );
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it("is undefined when running from the sources (no packed asset beside the module)", async () => {
    expect(await shippedQwen3TokenizerDir(join(work, "cache0"))).toBeUndefined();
  });

  it("unpacks once into the cache and encodes as the original files do", async () => {
    const cache = join(work, "cache1");
    const dirs = await Promise.all([1, 2, 3].map(() => shippedQwen3TokenizerDir(cache, asset)));
    expect(new Set(dirs).size).toBe(1);
    const dir = dirs[0]!;
    expect(dir.startsWith(join(cache, "tokenizers", "qwen3-"))).toBe(true);
    const ours = loadTokenizerFromDir(dir, "shipped");
    const original = loadTokenizerFromDir(npm, "npm");
    const text = "Hello world! <|im_start|>user\n¿Qué tal? 你好 🙂 \\boxed{42}<|im_end|>";
    expect(ours.encode(text)).toEqual(original.encode(text));
    expect(ours.chatTemplate).toBe(original.chatTemplate);
    expect(ours.vocabSize).toBe(original.vocabSize);
  });

  it("replaces a damaged copy found in the cache", async () => {
    const cache = join(work, "cache2");
    const dir = (await shippedQwen3TokenizerDir(cache, asset))!;
    const size = (await stat(join(dir, "tokenizer.json"))).size;
    await writeFile(join(dir, "tokenizer.json"), "{ truncated");
    // A new process (here: a new asset path for the per-process memo) checks the copy again.
    const again = join(work, "assets2");
    await mkdir(again);
    for (const f of ["tokenizer.json.br", "tokenizer_config.json"])
      await writeFile(join(again, f), await readFile(join(asset, f)));
    expect(await shippedQwen3TokenizerDir(cache, again)).toBe(dir);
    expect((await stat(join(dir, "tokenizer.json"))).size).toBe(size);
  });
});

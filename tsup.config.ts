import { defineConfig } from "tsup";

export default defineConfig({
  // All entries are built together and share chunks, so one process has one copy of each module:
  // errors stay `instanceof`-compatible across `tinker-ts` and `tinker-ts/local`, and the embedded
  // server and the tokenizer registry exist once. scripts/postbuild.mjs gives cli.js its shebang.
  entry: {
    index: "src/index.ts",
    local: "src/local/index.ts",
    worker: "src/local/engine/worker.ts",
    cli: "src/cli/main.ts",
  },
  format: ["esm", "cjs"],
  dts: { entry: { index: "src/index.ts", local: "src/local/index.ts" } },
  // No source maps: they would point at sources the package does not ship (the bundles are not
  // minified, so stack traces stay readable).
  sourcemap: false,
  clean: true,
  target: "node20",
  platform: "node",
  splitting: true,
  shims: true,
});

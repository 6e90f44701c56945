import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (p: string) => fileURLToPath(new URL(`./src/${p}`, import.meta.url));

export default defineConfig({
  // Examples import the package by name; tests run them against the sources.
  resolve: {
    alias: [
      { find: /^tinker-ts$/, replacement: src("index.ts") },
      { find: /^tinker-ts\/local$/, replacement: src("local/index.ts") },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});

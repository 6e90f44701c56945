/**
 * The package root: the Tinker client, its types and errors, and the cookbook (renderers,
 * tokenizers, datasets, envs, supervised, completers, losses and the recipes). The local engine and server are in the
 * `tinker-ts/local` entry (src/local/index.ts). test/package/api-surface.test.ts snapshots the
 * export names of both: `npm run api:update` after a deliberate change.
 */
export * from "./client/errors.js";
export * from "./client/index.js";
export * from "./client/types/index.js";
export * as wire from "./client/wire/index.js";
export * from "./completers/index.js";
export * from "./datasets/index.js";
export * from "./envs/index.js";
export * from "./losses/index.js";
export * from "./recipes/index.js";
export * from "./renderers/index.js";
export * from "./supervised/index.js";
export * from "./tokenizers/index.js";

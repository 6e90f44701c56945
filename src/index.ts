export * from "./client/errors.js";
export * from "./client/types/index.js";
export * from "./datasets/index.js";
export * from "./envs/index.js";
export * from "./client/index.js";
export * from "./local/engine/io/index.js";
export * from "./local/engine/index.js";
export * as wire from "./client/wire/index.js";

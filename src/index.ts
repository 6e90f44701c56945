export * from "./client/errors.js";
export * from "./client/types/index.js";
export * from "./datasets/index.js";
export * from "./envs/index.js";

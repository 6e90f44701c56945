export * from "./client/errors.js";
export * from "./client/types/index.js";

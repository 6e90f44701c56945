export * from "./tinker.js";
export * from "./types.js";

export * from "./tensor-data.js";
export * from "./model-input.js";
export * from "./datum.js";
export * from "./params.js";
export * from "./outputs.js";

export * from "./datum.js";
export * from "./model-input.js";
export * from "./outputs.js";
export * from "./params.js";
export * from "./tensor-data.js";

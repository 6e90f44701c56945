export * from "./datum.js";
export * from "./display.js";

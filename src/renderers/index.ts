export {
  BaseRenderer,
  outputIsTrained,
  type RendererCapabilities,
  type RendererOptions,
  renderContext,
} from "./base.js";
export { getTextContent, getThinkingContent } from "./content.js";
export { Llama3Renderer } from "./llama3.js";
export * from "./model-info.js";
export {
  Qwen3Renderer,
  type Qwen3RendererOptions,
  type Qwen3Variant,
  Qwen35Renderer,
  type Qwen35RendererOptions,
} from "./qwen3.js";
export * from "./registry.js";
export { RoleColonRenderer } from "./role-colon.js";
export * from "./types.js";

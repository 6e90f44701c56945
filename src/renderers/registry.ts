import { TinkerValidationError } from "../client/errors.js";
import type { Tokenizer } from "../tokenizers/types.js";
import { Llama3Renderer } from "./llama3.js";
import { Qwen3Renderer, Qwen35Renderer } from "./qwen3.js";
import { RoleColonRenderer } from "./role-colon.js";
import type { Renderer, RendererFactory } from "./types.js";

const BUILTIN: Readonly<Record<string, RendererFactory>> = {
  role_colon: (t) => new RoleColonRenderer(t),
  llama3: (t) => new Llama3Renderer(t),
  qwen3: (t) => new Qwen3Renderer(t, "thinking"),
  qwen3_disable_thinking: (t) => new Qwen3Renderer(t, "disable_thinking"),
  qwen3_instruct: (t) => new Qwen3Renderer(t, "instruct"),
  qwen3_5: (t) => new Qwen35Renderer(t),
  qwen3_5_disable_thinking: (t) => new Qwen35Renderer(t, { disableThinking: true }),
};

const custom = new Map<string, RendererFactory>();

/** Names of the renderers that ship with tinker-ts. */
export const BUILTIN_RENDERER_NAMES: readonly string[] = Object.keys(BUILTIN);

/** Add a renderer under `name` (checked before the built-ins, so it can override one). */
export function registerRenderer(name: string, factory: RendererFactory): void {
  if (typeof name !== "string" || name.length === 0) {
    throw new TinkerValidationError("renderer name must be a non-empty string", "name");
  }
  custom.set(name, factory);
}

/** Remove a custom renderer; returns whether it was registered. */
export function unregisterRenderer(name: string): boolean {
  return custom.delete(name);
}

/** Whether a custom renderer is registered under `name` (built-ins are not counted). */
export function isRendererRegistered(name: string): boolean {
  return custom.has(name);
}

/** Names of the custom renderers. */
export function getRegisteredRendererNames(): string[] {
  return [...custom.keys()];
}

/** The renderer called `name` for `tokenizer` (custom registry first, then the built-ins). */
export function getRenderer(name: string, tokenizer: Tokenizer): Renderer {
  const factory = custom.get(name) ?? BUILTIN[name];
  if (factory === undefined) {
    const known = [...BUILTIN_RENDERER_NAMES, ...custom.keys()].join(", ");
    throw new TinkerValidationError(
      `unknown renderer "${name}"; known renderers: ${known} (or registerRenderer() your own)`,
      "rendererName",
    );
  }
  return factory(tokenizer);
}

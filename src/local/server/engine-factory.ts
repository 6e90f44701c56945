import type { LocalEngine } from "../engine/api.js";
import { createLocalEngine } from "../engine/local-engine.js";

/** The preset served when neither presets nor model folders are given. */
export const DEFAULT_PRESETS: readonly string[] = ["tiny-bytes"];

/** The engine a server builds for itself when none is passed in. */
export function createDefaultEngine(opts: {
  modelDirs: readonly string[];
  presets?: readonly string[] | undefined;
}): Promise<LocalEngine> {
  const presets =
    opts.presets ?? (opts.modelDirs.length === 0 ? DEFAULT_PRESETS : ([] as readonly string[]));
  return createLocalEngine({ modelDirs: [...opts.modelDirs], presets: [...presets] });
}

import type { LocalEngine } from "../engine/api.js";
import { createLocalEngine } from "../engine/local-engine.js";

/**
 * The engine a server builds for itself when none is passed in: the built-in presets (all of them
 * when `presets` is undefined, only the listed ones otherwise, none for an empty list) plus the
 * model folders, each served under its folder path. Names outside that list are refused rather
 * than resolved from the hub, so a request never starts a multi-gigabyte download. Generated
 * preset tokenizers go under `cacheDir` (the server's data dir).
 */
export function createDefaultEngine(opts: {
  modelDirs: readonly string[];
  presets?: readonly string[] | undefined;
  cacheDir: string;
}): Promise<LocalEngine> {
  return createLocalEngine({
    presets: opts.presets ?? true,
    modelDirs: [...opts.modelDirs],
    resolveUnknown: false,
    tokenizer: { cacheDir: opts.cacheDir },
  });
}

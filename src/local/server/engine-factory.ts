import { TinkerValidationError } from "../../client/errors.js";
import type { LocalEngine } from "../engine/api.js";
import { createLocalEngine } from "../engine/local-engine.js";

/**
 * The engine a server builds for itself when none is passed in: the built-in presets (unless an
 * empty preset list is given) plus the model folders, each served under its folder path. Names
 * outside that list are refused rather than resolved from the hub, so a request never starts a
 * multi-gigabyte download.
 */
export async function createDefaultEngine(opts: {
  modelDirs: readonly string[];
  presets?: readonly string[] | undefined;
}): Promise<LocalEngine> {
  const wantPresets = opts.presets === undefined || opts.presets.length > 0;
  const engine = await createLocalEngine({
    presets: wantPresets,
    modelDirs: [...opts.modelDirs],
    resolveUnknown: false,
  });
  if (opts.presets && opts.presets.length > 0) {
    const served = new Set((await engine.listBaseModels()).map((m) => m.name));
    const unknown = opts.presets.filter((p) => !served.has(p));
    if (unknown.length > 0) {
      await engine.close();
      throw new TinkerValidationError(
        `unknown preset ${unknown.map((u) => JSON.stringify(u)).join(", ")}; available: ${[...served].join(", ")}`,
        "presets",
      );
    }
  }
  return engine;
}

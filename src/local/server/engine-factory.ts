import { TinkerValidationError } from "../../client/errors.js";
import type { LocalEngine } from "../engine/api.js";
import { isPreset } from "../engine/io/presets.js";
import { createLocalEngine } from "../engine/local-engine.js";

/** The engine a server builds for itself, and which of its base models the server offers. */
export interface DefaultEngine {
  engine: LocalEngine;
  /** False for built-in presets left out of an explicit preset list. */
  serves: (baseModel: string) => boolean;
}

/**
 * The engine a server builds for itself when none is passed in: the built-in presets (all of them
 * when `presets` is undefined, only the listed ones otherwise, none for an empty list) plus the
 * model folders, each served under its folder path. Names outside that list are refused rather
 * than resolved from the hub, so a request never starts a multi-gigabyte download.
 */
export async function createDefaultEngine(opts: {
  modelDirs: readonly string[];
  presets?: readonly string[] | undefined;
}): Promise<DefaultEngine> {
  const wantPresets = opts.presets === undefined || opts.presets.length > 0;
  const engine = await createLocalEngine({
    presets: wantPresets,
    modelDirs: [...opts.modelDirs],
    resolveUnknown: false,
  });
  if (opts.presets === undefined || opts.presets.length === 0) {
    return { engine, serves: () => true };
  }
  const served = new Set((await engine.listBaseModels()).map((m) => m.name));
  const unknown = opts.presets.filter((p) => !served.has(p));
  if (unknown.length > 0) {
    await engine.close();
    throw new TinkerValidationError(
      `unknown preset ${unknown.map((u) => JSON.stringify(u)).join(", ")}; available: ${[...served].join(", ")}`,
      "presets",
    );
  }
  // The engine builds every preset or none, so the server leaves out the ones not asked for.
  const wanted = new Set(opts.presets);
  return { engine, serves: (name) => !isPreset(name) || wanted.has(name) };
}

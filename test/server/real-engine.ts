import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { LocalEngine } from "../../src/local/engine/api.js";

const ENGINE_MODULE = "../../src/local/engine/local-engine.js";

/** Whether the real local engine is present in this checkout. */
export function realEngineAvailable(): boolean {
  const path = fileURLToPath(new URL(ENGINE_MODULE.replace(/\.js$/, ".ts"), import.meta.url));
  return existsSync(path);
}

/** The real local engine serving the `tiny-bytes` preset. */
export async function realEngine(): Promise<{
  engine: LocalEngine;
  model: string;
  close: () => Promise<void>;
}> {
  const mod = (await import(ENGINE_MODULE)) as {
    createLocalEngine: (opts: { presets: string[]; modelDirs: string[] }) => Promise<LocalEngine>;
  };
  const engine = await mod.createLocalEngine({ presets: ["tiny-bytes"], modelDirs: [] });
  return { engine, model: "tiny-bytes", close: () => engine.close() };
}

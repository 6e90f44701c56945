import type { LocalEngine } from "../../src/local/engine/api.js";
import { createLocalEngine } from "../../src/local/engine/local-engine.js";

/** The real local engine serving the `tiny-bytes` preset. */
export async function realEngine(): Promise<{
  engine: LocalEngine;
  model: string;
  close: () => Promise<void>;
}> {
  const engine = await createLocalEngine({ presets: true, resolveUnknown: false });
  return { engine, model: "tiny-bytes", close: () => engine.close() };
}

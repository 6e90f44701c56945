import { ServiceClient } from "../../src/client/service-client.js";
import type { LocalEngine } from "../../src/local/engine/api.js";
import { createLocalEngine } from "../../src/local/engine/local-engine.js";
import { startTestServer, tempDir } from "./helpers.js";

/** The real local engine serving the `tiny-bytes` preset. */
export async function realEngine(): Promise<{
  engine: LocalEngine;
  model: string;
  close: () => Promise<void>;
}> {
  const engine = await createLocalEngine({ presets: true, resolveUnknown: false });
  return { engine, model: "tiny-bytes", close: () => engine.close() };
}

/** A real local server (real engine, tiny-bytes) in a temp data dir, and a client for it. */
export async function startRealServer(tag: string) {
  const tmp = await tempDir(tag);
  const e = await realEngine();
  const server = await startTestServer(tmp.dir, e.engine);
  const service = new ServiceClient({
    baseUrl: server.url,
    apiKey: "tml-local",
    logLevel: "error",
    env: {},
  });
  return {
    dir: tmp.dir,
    server,
    service,
    async close() {
      await service.close();
      await server.close();
      await e.close();
      await tmp.cleanup();
    },
  };
}

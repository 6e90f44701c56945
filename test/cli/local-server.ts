/**
 * A real local server (tiny-bytes preset) on a loopback port for the CLI tests, with
 * TINKER_BASE_URL pointing the commands' `new ServiceClient()` at it.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ServiceClient } from "../../src/client/service-client.js";
import { type LocalServer, startLocalServer } from "../../src/local/server/server.js";
import { GSM8K_DIR } from "../fixture-paths.js";

export interface CliServer {
  server: LocalServer;
  dir: string;
  /** Environment for a child process using this server. */
  env: NodeJS.ProcessEnv;
  /** A LoRA on tiny-bytes with a saved training state and sampler weights. */
  checkpoints(): Promise<{ runId: string; statePath: string; samplerPath: string }>;
  close(): Promise<void>;
}

export async function startCliServer(tag: string): Promise<CliServer> {
  const dir = await mkdtemp(join(tmpdir(), `tinker-ts-${tag}-`));
  const server = await startLocalServer({
    dataDir: join(dir, "server"),
    presets: ["tiny-bytes"],
    logger: {
      info: () => undefined,
      warn: () => undefined,
      error: (m: string) => console.error(m),
    },
  });
  const saved = { url: process.env.TINKER_BASE_URL, key: process.env.TINKER_API_KEY };
  process.env.TINKER_BASE_URL = server.url;
  delete process.env.TINKER_API_KEY;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TINKER_BASE_URL: server.url,
    TINKER_TS_CACHE_DIR: join(dir, "cache"),
  };
  let made: Awaited<ReturnType<CliServer["checkpoints"]>> | undefined;
  return {
    server,
    dir,
    env,
    async checkpoints() {
      if (made) return made;
      const service = new ServiceClient({ baseUrl: server.url });
      try {
        const tc = await service.createLoraTrainingClient("tiny-bytes", { rank: 4 });
        const statePath = (await tc.saveState("state-0")).path;
        const samplerPath = (await tc.saveWeightsForSampler("sampler-0")).path;
        const runId = statePath.slice("tinker://".length).split("/")[0]!;
        made = { runId, statePath, samplerPath };
        return made;
      } finally {
        await service.close();
      }
    },
    async close() {
      if (saved.url === undefined) delete process.env.TINKER_BASE_URL;
      else process.env.TINKER_BASE_URL = saved.url;
      if (saved.key !== undefined) process.env.TINKER_API_KEY = saved.key;
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The first `n` rows of the in-repo GSM8K test split, as a questions file. */
export async function gsm8kSlice(
  dir: string,
  n: number,
  name = "questions.jsonl",
): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  const lines = (await readFile(join(GSM8K_DIR, "test.jsonl"), "utf8")).split("\n").slice(0, n);
  const path = join(dir, name);
  await writeFile(path, `${lines.join("\n")}\n`);
  return path;
}

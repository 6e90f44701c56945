/**
 * Each preset's tokenizer loads on the client with no network and an empty Hugging Face cache:
 * by name (`loadTokenizer`) and through a training client of the real local server
 * (`getTokenizer`, which must not follow the server's hub tokenizer id for a preset).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServiceClient } from "../../src/client/service-client.js";
import { ModelInput } from "../../src/client/types/model-input.js";
import { type LocalServer, startLocalServer } from "../../src/local/server/server.js";
import { clearTokenizerCache, loadTokenizer } from "../../src/tokenizers/loader.js";

const ENV_KEYS = ["HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "TINKER_TS_CACHE_DIR"] as const;

describe("preset tokenizers offline", () => {
  let work: string;
  let server: LocalServer;
  const saved = new Map<string, string | undefined>();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "tinker-ts-offline-tok-"));
    for (const k of ENV_KEYS) saved.set(k, process.env[k]);
    process.env.HF_HUB_CACHE = join(work, "empty-hf");
    process.env.HF_HUB_OFFLINE = "1";
    process.env.HF_ENDPOINT = "http://127.0.0.1:9"; // any hub request would fail at once
    process.env.TINKER_TS_CACHE_DIR = join(work, "cache");
    clearTokenizerCache();
    server = await startLocalServer({
      dataDir: join(work, "data"),
      presets: ["tiny-bytes", "tiny-qwen3"],
      logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
  });

  afterAll(async () => {
    await server?.close();
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    clearTokenizerCache();
    await rm(work, { recursive: true, force: true });
  });

  it.each([
    ["tiny-bytes", [72, 105]],
    ["tiny-qwen3", [13048]],
  ])("loadTokenizer(%s) works offline", async (name, hiIds) => {
    const tokenizer = await loadTokenizer(name);
    expect(tokenizer.encode("Hi", { addSpecialTokens: false })).toEqual(hiIds);
  });

  it.each(["tiny-bytes", "tiny-qwen3"])(
    "a %s training client's getTokenizer() works offline",
    async (preset) => {
      const service = new ServiceClient({ baseUrl: server.url, apiKey: "tml-unused" });
      try {
        const training = await service.createLoraTrainingClient(preset, { rank: 4 });
        const tokenizer = await training.getTokenizer();
        const ids = tokenizer.encode("Hello world", { addSpecialTokens: false });
        expect(tokenizer.decode(ids)).toBe("Hello world");
        if (preset === "tiny-qwen3") expect(ids).toEqual([9707, 1879]);
        const sampler = await training.saveWeightsAndGetSamplingClient();
        const prompt = ModelInput.fromInts(ids);
        const { sequences } = await sampler.sample(prompt, 1, { maxTokens: 3, temperature: 0 });
        expect(sequences[0]!.tokens.length).toBe(3);
      } finally {
        await service.close();
      }
    },
  );
});

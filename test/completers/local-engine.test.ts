/**
 * The completers against a real sampler: the tinker-ts client over loopback to the local server
 * on the real engine (`tiny-bytes`), with the role_colon renderer on that model's tokenizer.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SamplingClient } from "../../src/client/sampling-client.js";
import { ServiceClient } from "../../src/client/service-client.js";
import { TinkerMessageCompleter, TinkerTokenCompleter } from "../../src/completers/tinker.js";
import type { LocalServer } from "../../src/local/server/server.js";
import { getRenderer } from "../../src/renderers/registry.js";
import type { Renderer } from "../../src/renderers/types.js";
import { loadTokenizer } from "../../src/tokenizers/loader.js";
import { startTestServer, tempDir } from "../server/helpers.js";
import { realEngine } from "../server/real-engine.js";

describe("completers on the local engine", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let server: LocalServer;
  let closeEngine: () => Promise<void>;
  let service: ServiceClient;
  let sampler: SamplingClient;
  let renderer: Renderer;

  beforeAll(async () => {
    tmp = await tempDir("completers");
    const e = await realEngine();
    closeEngine = e.close;
    server = await startTestServer(tmp.dir, e.engine);
    service = new ServiceClient({
      baseUrl: server.url,
      apiKey: "tml-local",
      logLevel: "error",
      env: {},
    });
    sampler = await service.createSamplingClient({ baseModel: e.model });
    renderer = getRenderer("role_colon", await loadTokenizer(e.model));
  });
  afterAll(async () => {
    await service?.close();
    await server?.close();
    await closeEngine?.();
    await tmp?.cleanup();
  });

  it("the message completer is the renderer's parse of the token completer's sample", async () => {
    const messages = [{ role: "user", content: "Say hi." }] as const;
    const opts = { maxTokens: 6, seed: 7, temperature: 1 };
    const tokens = await new TinkerTokenCompleter(sampler, opts).complete(
      renderer.buildGenerationPrompt(messages),
      renderer.getStopSequences(),
    );
    expect(tokens.tokens.length).toBeGreaterThan(0);
    expect(tokens.tokens.length).toBeLessThanOrEqual(6);
    expect(tokens.logprobs).toHaveLength(tokens.tokens.length);
    for (const lp of tokens.logprobs!) expect(lp).toBeLessThanOrEqual(0);
    expect(["length", "stop"]).toContain(tokens.stopReason);

    const parsed = await new TinkerMessageCompleter(
      sampler,
      renderer,
      opts,
    ).completeWithTermination(messages);
    expect(parsed).toEqual(renderer.parseResponse(tokens.tokens));
    expect(parsed.message.role).toBe("assistant");
  });

  it("a per-call maxTokens caps the sample", async () => {
    const c = new TinkerTokenCompleter(sampler, { maxTokens: 64, seed: 1 });
    const prompt = renderer.buildGenerationPrompt([{ role: "user", content: "Count." }]);
    const out = await c.complete(prompt, ["\u0000never"], { maxTokens: 3 });
    expect(out.tokens).toHaveLength(3);
    expect(out.stopReason).toBe("length");
  });
});

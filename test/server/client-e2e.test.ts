/**
 * End to end through the real tinker-ts client over loopback against the local server on the real
 * engine: create model, pipelined forward_backward + optim_step, save/load state, sampler weights,
 * sampling, REST listing, and checkpoint archives.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServiceClient } from "../../src/client/service-client.js";
import { makeDatum } from "../../src/client/types/datum.js";
import { ModelInput } from "../../src/client/types/model-input.js";
import type { LocalServer } from "../../src/local/server/server.js";
import { startTestServer, tempDir, untar } from "./helpers.js";
import { realEngine } from "./real-engine.js";

const MODEL = "tiny-bytes";
const text = Array.from(Buffer.from("hello tinker, hello world. "));
const batch = [
  makeDatum(ModelInput.fromInts(text.slice(0, -1)), {
    target_tokens: text.slice(1),
    weights: text.slice(1).map(() => 1),
  }),
];

describe("tinker-ts client against the local server (real engine)", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let server: LocalServer;
  let closeEngine: () => Promise<void>;
  let service: ServiceClient;

  beforeAll(async () => {
    tmp = await tempDir("server-e2e");
    const e = await realEngine();
    closeEngine = e.close;
    server = await startTestServer(tmp.dir, e.engine);
    service = new ServiceClient({
      baseUrl: server.url,
      apiKey: "tml-local",
      logLevel: "error",
      env: {},
    });
  });
  afterAll(async () => {
    await service?.close();
    await server?.close();
    await closeEngine?.();
    await tmp?.cleanup();
  });

  it("trains, saves, restores, samples and lists through the client", async () => {
    const caps = await service.getServerCapabilities();
    expect(caps.supportedModels.map((m) => m.modelName)).toContain(MODEL);

    const tc = await service.createLoraTrainingClient(MODEL, { rank: 8, seed: 11 });
    const info = await tc.getInfo();
    expect(info.modelId).toMatch(/:train:0$/);

    // pipelined: submit forward_backward and optim_step back to back, await later
    const losses: number[] = [];
    for (let step = 0; step < 4; step++) {
      const fb = tc.forwardBackward(batch, "cross_entropy");
      const opt = tc.optimStep({ learningRate: 0.02 });
      const [out] = await Promise.all([fb, opt]);
      losses.push(out.metrics["loss:sum"]!);
    }
    expect(losses[3]!).toBeLessThan(losses[0]!);

    const saved = await tc.saveState("e2e-state");
    expect(saved.path).toBe(`tinker://${info.modelId}/weights/e2e-state`);
    const before = await tc.forward(batch, "cross_entropy");

    // training continues from the checkpoint in a new model (weights and optimizer)
    const restored = await service.createTrainingClientFromStateWithOptimizer(saved.path);
    const after = await restored.forward(batch, "cross_entropy");
    expect(after.metrics["loss:sum"]).toBeCloseTo(before.metrics["loss:sum"]!, 4);
    await restored.forwardBackward(batch, "cross_entropy");
    await restored.optimStep({ learningRate: 0.02 });

    // load_state into the original model
    await tc.loadState(saved.path);

    const sampler = await tc.saveWeightsForSampler("e2e-sampler");
    const sc = await service.createSamplingClient({ modelPath: sampler.path });
    const res = await sc.sample(ModelInput.fromInts(text.slice(0, 6)), 2, {
      maxTokens: 5,
      seed: 3,
    });
    expect(res.sequences).toHaveLength(2);
    expect(res.sequences[0]!.tokens).toHaveLength(5);
    const again = await sc.sample(ModelInput.fromInts(text.slice(0, 6)), 2, {
      maxTokens: 5,
      seed: 3,
    });
    expect(again.sequences.map((s) => s.tokens)).toEqual(res.sequences.map((s) => s.tokens));
    const lps = await sc.computeLogprobs(ModelInput.fromInts(text.slice(0, 6)));
    expect(lps).toHaveLength(6);
    expect(lps[0]).toBeNull();

    const eph = await tc.saveWeightsAndGetSamplingClient();
    const r2 = await eph.sample(ModelInput.fromInts(text.slice(0, 6)), 1, {
      maxTokens: 3,
      seed: 3,
    });
    expect(r2.sequences[0]!.tokens).toHaveLength(3);

    const rest = service.createRestClient();
    const runs = await rest.listTrainingRuns({ limit: 50 });
    expect(runs.trainingRuns.map((r) => r.trainingRunId)).toContain(info.modelId);
    const cps = await rest.listCheckpoints(info.modelId);
    expect(cps.checkpoints.map((c) => c.checkpointId).sort()).toEqual([
      "sampler_weights/e2e-sampler",
      "weights/e2e-state",
    ]);
    const url = await rest.getCheckpointArchiveUrlFromTinkerPath(saved.path);
    const tar = untar(new Uint8Array(await (await fetch(url.url)).arrayBuffer()));
    expect([...tar.keys()].some((n) => n.endsWith(".safetensors"))).toBe(true);
    await rest.deleteCheckpointFromTinkerPath(sampler.path);
    const left = await rest.listCheckpoints(info.modelId);
    expect(left.checkpoints.map((c) => c.checkpointId)).toEqual(["weights/e2e-state"]);
  });

  it("concurrent sample requests return exactly what each returns alone", async () => {
    const tc = await service.createLoraTrainingClient(MODEL, { rank: 4, seed: 5 });
    await tc.forwardBackward(batch, "cross_entropy");
    await tc.optimStep({ learningRate: 0.05 });
    const sampler = await tc.saveWeightsAndGetSamplingClient();
    const prompts = Array.from({ length: 8 }, (_, i) =>
      ModelInput.fromInts(Array.from(Buffer.from(`prompt number ${i}: `))),
    );
    const params = { maxTokens: 16, temperature: 1, seed: 3 };
    const alone = [];
    for (const p of prompts) alone.push(await sampler.sample(p, 2, params));
    const together = await Promise.all(prompts.map((p) => sampler.sample(p, 2, params)));
    expect(together.map((r) => r.sequences)).toEqual(alone.map((r) => r.sequences));
  });
});

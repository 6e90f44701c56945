import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ADAM_DEFAULTS } from "../../src/client/types/params.js";
import type { EngineSampleRequest } from "../../src/local/engine/api.js";
import { EngineCore } from "../../src/local/engine/core/engine-core.js";
import { EngineRequestQueue } from "../../src/local/engine/core/request-queue.js";
import { createKernels } from "../../src/local/engine/kernels/index.js";
import { ceData, engineData } from "./fixtures.js";

/*
 * The engine's request order on the real engine core (tiny-bytes preset, wasm kernels): sample
 * requests queued side by side run as one batch and get exactly what they get alone; nothing is
 * reordered across a job that changes the adapter.
 */
describe("engine request queue", () => {
  let core: EngineCore;
  beforeAll(async () => {
    core = new EngineCore(await createKernels({ prefer: "wasm", threads: 2 }), {
      presets: ["tiny-bytes"],
      resolveUnknown: false,
    });
    await core.createAdapter("a", "tiny-bytes", {
      rank: 4,
      seed: 3,
      trainAttn: true,
      trainMlp: true,
      trainUnembed: true,
    });
  });
  afterAll(async () => core.close());

  const req = (i: number, extra: Partial<EngineSampleRequest> = {}): EngineSampleRequest => ({
    baseModel: "tiny-bytes",
    adapterId: "a",
    prompt: Int32Array.from({ length: 5 + i }, (_, j) => 70 + ((i * 7 + j * 3) % 40)),
    numSamples: 1 + (i % 3),
    params: { maxTokens: 12, seed: 100 + i, temperature: 1 },
    promptLogprobs: i === 2,
    topkPromptLogprobs: 0,
    ...extra,
  });

  async function train(): Promise<void> {
    const data = engineData(ceData(256, [20, 12], 5));
    await core.forwardBackward("a", data, "cross_entropy", undefined, false);
    core.optimStep("a", { ...ADAM_DEFAULTS, learningRate: 5e-2 });
  }

  it("batches side-by-side sample requests, keeps order around other jobs, isolates errors", async () => {
    const before = await Promise.all([0, 1, 2, 3, 4].map((i) => core.sample(req(i))));
    const queue = new EngineRequestQueue(core);
    const spy = vi.spyOn(core, "sampleMany");
    // All submitted in one tick: five samples, a training step, an invalid sample and three more.
    const first = [0, 1, 2, 3, 4].map((i) => queue.sample(req(i)));
    const trained = queue.run(train);
    const bad = queue.sample(req(9, { params: { maxTokens: 1e9 } }));
    const later = [5, 6, 7].map((i) => queue.sample(req(i)));
    expect(await Promise.all(first)).toEqual(before);
    await trained;
    await expect(bad).rejects.toThrow(/max_tokens/);
    const after = await Promise.all(later);
    expect(spy.mock.calls.map((c) => c[0].length)).toEqual([5, 4]);
    spy.mockRestore();
    // The later samples saw the trained adapter, and match what it gives one request at a time.
    const alone = [];
    for (const i of [5, 6, 7]) alone.push(await core.sample(req(i)));
    expect(after).toEqual(alone);
    const untrained = await core.sample(req(0));
    expect(untrained).not.toEqual(before[0]);
  });
});

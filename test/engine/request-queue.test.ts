import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SampleResponse } from "../../src/client/types/outputs.js";
import { ADAM_DEFAULTS } from "../../src/client/types/params.js";
import type { EngineSampleRequest } from "../../src/local/engine/api.js";
import { EngineCore } from "../../src/local/engine/core/engine-core.js";
import {
  EngineRequestQueue,
  type EngineSampling,
} from "../../src/local/engine/core/request-queue.js";
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

  /**
   * The real core's sessions, recording each session's admissions (request counts per `admit`) and
   * running `onStep(n)` before its n-th decode step.
   */
  function observed(onStep: (n: number) => void = () => {}) {
    const sessions: number[][] = [];
    const sampler = {
      openSampling: async (first: EngineSampleRequest): Promise<EngineSampling> => {
        const inner = await core.openSampling(first);
        const admits: number[] = [];
        sessions.push(admits);
        let steps = 0;
        return {
          get live() {
            return inner.live;
          },
          joinBytes: (r, b, n) => inner.joinBytes(r, b, n),
          admit: (reqs, done) => {
            if (reqs.length > 0) admits.push(reqs.length);
            inner.admit(reqs, done);
          },
          step: () => {
            onStep(++steps);
            inner.step();
          },
          dispose: () => inner.dispose(),
        };
      },
    };
    return { sessions, sampler };
  }

  async function train(): Promise<void> {
    const data = engineData(ceData(256, [20, 12], 5));
    await core.forwardBackward("a", data, "cross_entropy", undefined, false);
    core.optimStep("a", { ...ADAM_DEFAULTS, learningRate: 5e-2 });
  }

  it("batches side-by-side sample requests, keeps order around other jobs, isolates errors", async () => {
    const before = await Promise.all([0, 1, 2, 3, 4].map((i) => core.sample(req(i))));
    const { sessions, sampler } = observed();
    const queue = new EngineRequestQueue(sampler);
    // All submitted in one tick: five samples, a training step, an invalid sample and three more.
    const first = [0, 1, 2, 3, 4].map((i) => queue.sample(req(i)));
    const trained = queue.run(train);
    const bad = queue.sample(req(9, { params: { maxTokens: 1e9 } }));
    const later = [5, 6, 7].map((i) => queue.sample(req(i)));
    expect(await Promise.all(first)).toEqual(before);
    await trained;
    await expect(bad).rejects.toThrow(/max_tokens/);
    const after = await Promise.all(later);
    // One session for the five, another (after the training step) for the invalid one and three.
    expect(sessions).toEqual([[5], [4]]);
    // The later samples saw the trained adapter, and match what it gives one request at a time.
    const alone = [];
    for (const i of [5, 6, 7]) alone.push(await core.sample(req(i)));
    expect(after).toEqual(alone);
    const untrained = await core.sample(req(0));
    expect(untrained).not.toEqual(before[0]);
  });

  it("a request arriving while a session decodes joins it and gets what it gets alone", async () => {
    const a = req(1, { params: { maxTokens: 30, seed: 1, temperature: 1 } });
    const b = req(2);
    const c = req(3, { adapterId: undefined }); // the base model: another session, after
    // a's prompt again, other seed and length: copies the prompt cache a running sample of a holds.
    const a2 = req(1, { numSamples: 3, params: { maxTokens: 7, seed: 9, temperature: 1 } });
    const [aloneA, aloneB, aloneC, aloneA2] = [
      await core.sample(a),
      await core.sample(b),
      await core.sample(c),
      await core.sample(a2),
    ];
    let queue: EngineRequestQueue | undefined;
    let lateB: Promise<unknown> | undefined;
    let lateC: Promise<unknown> | undefined;
    let lateA2: Promise<SampleResponse> | undefined;
    const { sessions, sampler } = observed((n) => {
      if (n === 3 && !lateB) {
        lateB = queue!.sample(b);
        lateC = queue!.sample(c);
        lateA2 = queue!.sample(a2);
      }
    });
    queue = new EngineRequestQueue(sampler);
    const first = queue.sample(a);
    expect(await first).toEqual(aloneA);
    expect(await lateB).toEqual(aloneB);
    expect(await lateC).toEqual(aloneC);
    const joinedA2 = await lateA2!;
    expect(joinedA2.sequences).toEqual(aloneA2.sequences);
    expect(joinedA2.promptCacheHitTokens).toBe(a2.prompt.length);
    expect(aloneA2.promptCacheHitTokens).toBe(0);
    expect(sessions).toEqual([[1, 2], [1]]);
  });
});

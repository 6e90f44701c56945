/**
 * The engine memory figures admission control relies on, checked against what the engine's heap
 * really grows by: an estimate must never be below the real need (a request it lets through must
 * fit) and should not be far above it (it would refuse requests that fit).
 */
import { describe, expect, it } from "vitest";
import { makeDatum } from "../../src/client/types/datum.js";
import { ModelInput } from "../../src/client/types/model-input.js";
import { EngineCore } from "../../src/local/engine/core/engine-core.js";
import { createEngineKernels } from "../../src/local/engine/kernels/index.js";
import { toEngineDatum } from "../../src/local/engine/train/datum.js";
import { adapterBytes } from "../../src/local/server/admission.js";

interface HeapStats {
  liveBytes: number;
  heapTop: number;
}

describe("engine memory estimates", () => {
  it("bound the heap an adapter and a forward_backward really take (tiny-bytes)", async () => {
    const { kernels, info } = await createEngineKernels("wasm", 1);
    const heap = (kernels as unknown as { heap?: { stats(): HeapStats } }).heap;
    if (!info.kernels.startsWith("wasm") || !heap) return; // the js fallback has no heap to measure
    const core = new EngineCore(kernels, { presets: ["tiny-bytes"], resolveUnknown: false });
    try {
      const base = await core.getBaseModel("tiny-bytes");
      const mem = base.memory!;
      const lora = { rank: 16, seed: 1, trainAttn: true, trainMlp: true, trainUnembed: true };
      const h0 = heap.stats();
      await core.createAdapter("a", "tiny-bytes", lora);
      const h1 = heap.stats();
      const adapterReal = h1.liveBytes - h0.liveBytes;
      expect(adapterBytes(mem, lora)).toBeGreaterThanOrEqual(adapterReal);
      expect(adapterBytes(mem, lora)).toBeLessThan(adapterReal * 1.25);

      const tokens = Array.from({ length: 1000 }, (_, i) => i % 200);
      const datum = makeDatum(ModelInput.fromInts(tokens), {
        target_tokens: tokens,
        weights: tokens.map(() => 1),
      });
      const data = [0, 1].map(() => toEngineDatum(datum, 0, false));
      await core.forwardBackward("a", data, "cross_entropy", undefined, false);
      const grown = heap.stats().heapTop - h1.heapTop;
      const estimate = 2000 * (mem.trainBytesPerToken + 16 * mem.trainBytesPerTokenPerRank);
      expect(
        estimate + Math.min(2000 * mem.headBytesPerToken, mem.headBytesMax),
      ).toBeGreaterThanOrEqual(grown);
      expect(estimate).toBeLessThan(grown * 1.25);
    } finally {
      await core.close();
    }
  });
});

import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { makeDatum } from "../../src/client/types/datum.js";
import { ADAM_DEFAULTS } from "../../src/client/types/params.js";
import { writeSafetensors } from "../../src/local/engine/io/safetensors.js";
import { createLocalEngine, type LocalEngineHandle } from "../../src/local/engine/local-engine.js";
import type { ModelConfig } from "../../src/local/engine/model/config.js";
import { TINY_QWEN3 } from "./fixtures.js";

const CFG: ModelConfig = {
  ...TINY_QWEN3,
  vocabSize: 48,
  hiddenSize: 32,
  intermediateSize: 64,
  maxPositionEmbeddings: 2048,
};
const BIG: ModelConfig = { ...CFG, hiddenSize: 64, intermediateSize: 192, numLayers: 3 };
const LORA = { rank: 4, seed: 3, trainAttn: true, trainMlp: true, trainUnembed: true };

function batch(n: number, len: number, vocab: number) {
  return Array.from({ length: n }, (_, i) => {
    const seq = Array.from({ length: len + 1 }, (_, j) => (i * 7 + j * 3) % vocab);
    return makeDatum(seq.slice(0, -1), {
      target_tokens: seq.slice(1),
      weights: seq.slice(1).map(() => 1),
    });
  });
}

describe("createLocalEngine (worker thread, js kernels)", () => {
  let engine: LocalEngineHandle;
  let dir: string;
  beforeAll(async () => {
    engine = await createLocalEngine({
      kernels: "js",
      presets: false,
      resolveUnknown: false,
      models: [
        { name: "tiny", config: CFG, seed: 1 },
        { name: "bigger", config: BIG, seed: 2 },
      ],
    });
    dir = await mkdtemp(join(tmpdir(), "engine-test-"));
  });
  afterAll(async () => {
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("lists and describes base models; unknown names are validation errors", async () => {
    expect((await engine.listBaseModels()).map((m) => m.name)).toEqual(["tiny", "bigger"]);
    expect(await engine.getBaseModel("tiny")).toMatchObject({
      arch: "qwen3",
      vocabSize: 48,
      maxContextLength: 2048,
    });
    await expect(engine.getBaseModel("nope")).rejects.toBeInstanceOf(TinkerValidationError);
    expect((await engine.kernelsInfo()).kernels).toBe("js");
  });

  it("create adapter -> forwardBackward -> optimStep -> sample, end to end", async () => {
    await engine.createAdapter("a1", "tiny", LORA);
    expect(await engine.hasAdapter("a1")).toBe(true);
    const data = batch(3, 12, CFG.vocabSize);
    const first = await engine.forwardBackward("a1", data, "cross_entropy", undefined, false);
    expect(first.lossFnOutputs).toHaveLength(3);
    expect(first.lossFnOutputs[0]!.logprobs!.shape).toEqual([12]);
    const step = await engine.optimStep("a1", { ...ADAM_DEFAULTS, learningRate: 1e-2 });
    expect(step.metrics?.["grad_norm:mean"]).toBeGreaterThan(0);
    let last = first.metrics["loss:sum"]!;
    for (let i = 0; i < 10; i++) {
      last = (await engine.forwardBackward("a1", data, "cross_entropy", undefined, false)).metrics[
        "loss:sum"
      ]!;
      await engine.optimStep("a1", { ...ADAM_DEFAULTS, learningRate: 1e-2 });
    }
    expect(last).toBeLessThan(first.metrics["loss:sum"]!);
    const s = await engine.sample({
      baseModel: "tiny",
      adapterId: "a1",
      prompt: Int32Array.from([1, 4, 7]),
      numSamples: 2,
      params: { maxTokens: 5, seed: 1, temperature: 0.7 },
      promptLogprobs: true,
      topkPromptLogprobs: 2,
    });
    expect(s.sequences).toHaveLength(2);
    expect(s.sequences[0]!.logprobs).toHaveLength(s.sequences[0]!.tokens.length);
    expect(s.promptLogprobs).toHaveLength(3);
    expect(s.topkPromptLogprobs![1]).toHaveLength(2);
  });

  it("errors cross the thread boundary typed, with the field, and leave the adapter unchanged", async () => {
    await engine.createAdapter("a2", "tiny", LORA);
    const before = await engine.exportAdapterState("a2");
    const bad = [makeDatum([1, 2, 99], { target_tokens: [2, 3, 4], weights: [1, 1, 1] })];
    const err = await engine
      .forwardBackward("a2", bad, "cross_entropy", undefined, false)
      .catch((e) => e);
    expect(err).toBeInstanceOf(TinkerValidationError);
    expect(err.field).toBe("data[0].model_input");
    await engine.optimStep("a2", ADAM_DEFAULTS);
    const after = await engine.exportAdapterState("a2");
    // A rejected call accumulated nothing, so the step (zero gradient) left the weights unchanged.
    for (const [k, t] of before.weights) expect(after.weights.get(k)!.data).toEqual(t.data);
    await expect(
      engine.forwardBackward("missing", batch(1, 3, 48), "cross_entropy", undefined, false),
    ).rejects.toMatchObject({
      field: "model_id",
    });
  });

  it("save -> load gives bit-identical outputs, and the optimizer state resumes exactly", async () => {
    await engine.createAdapter("s1", "tiny", LORA);
    const data = batch(2, 10, CFG.vocabSize);
    for (let i = 0; i < 3; i++) {
      await engine.forwardBackward("s1", data, "cross_entropy", undefined, false);
      await engine.optimStep("s1", { ...ADAM_DEFAULTS, learningRate: 5e-3 });
    }
    const path = join(dir, "ckpt");
    await engine.saveAdapter("s1", path, { optimizer: true });
    expect((await readdir(path)).sort()).toEqual([
      "adapter_config.json",
      "adapter_model.safetensors",
      "optimizer.safetensors",
    ]);
    const cfg = JSON.parse(await readFile(join(path, "adapter_config.json"), "utf8"));
    expect(cfg).toMatchObject({
      peft_type: "LORA",
      r: 4,
      lora_alpha: 32,
      base_model_name_or_path: "tiny",
    });
    const info = await engine.loadAdapter("s2", path, { optimizer: true });
    expect(info).toEqual({ baseModel: "tiny", lora: LORA });

    const f1 = await engine.forwardBackward("s1", data, "cross_entropy", undefined, true);
    const f2 = await engine.forwardBackward("s2", data, "cross_entropy", undefined, true);
    expect(f2.metrics["loss:sum"]).toBe(f1.metrics["loss:sum"]);
    for (let i = 0; i < data.length; i++)
      expect(f2.lossFnOutputs[i]!.logprobs!.data).toEqual(f1.lossFnOutputs[i]!.logprobs!.data);
    const req = {
      baseModel: "tiny",
      prompt: Int32Array.from([5, 6]),
      numSamples: 2,
      params: { maxTokens: 6, seed: 9 },
      promptLogprobs: false,
      topkPromptLogprobs: 0,
    };
    const s1 = await engine.sample({ ...req, adapterId: "s1" });
    const s2 = await engine.sample({ ...req, adapterId: "s2" });
    expect(s2).toEqual(s1);
    // One more identical step on both: same weights afterwards (moments and step count restored).
    for (const id of ["s1", "s2"]) {
      await engine.forwardBackward(id, data, "cross_entropy", undefined, false);
      await engine.optimStep(id, { ...ADAM_DEFAULTS, learningRate: 5e-3 });
    }
    const a = await engine.exportAdapterState("s1");
    const b = await engine.exportAdapterState("s2");
    expect(b.optimizer.step).toBe(4);
    for (const [k, t] of a.weights) expect(b.weights.get(k)!.data).toEqual(t.data);
  });

  it("concurrent sample requests on the worker give what each gives alone, training in between", async () => {
    await engine.createAdapter("cc", "tiny", LORA);
    const req = (i: number) => ({
      baseModel: "tiny",
      adapterId: "cc",
      prompt: Int32Array.from({ length: 3 + i }, (_, j) => (i + j * 5) % CFG.vocabSize),
      numSamples: 1 + (i % 2),
      params: { maxTokens: 8, seed: i, temperature: 1 },
      promptLogprobs: false,
      topkPromptLogprobs: 0,
    });
    const ids = [0, 1, 2, 3, 4, 5];
    const alone = [];
    for (const i of ids) alone.push(await engine.sample(req(i)));
    const data = batch(2, 10, CFG.vocabSize);
    // Submitted together: six samples, a training step, six samples again.
    const before = Promise.all(ids.map((i) => engine.sample(req(i))));
    const fb = engine.forwardBackward("cc", data, "cross_entropy", undefined, false);
    const step = engine.optimStep("cc", { ...ADAM_DEFAULTS, learningRate: 5e-2 });
    const after = Promise.all(ids.map((i) => engine.sample(req(i))));
    expect(await before).toEqual(alone);
    await fb;
    await step;
    const trained = await after;
    expect(trained).not.toEqual(alone);
    const trainedAlone = [];
    for (const i of ids) trainedAlone.push(await engine.sample(req(i)));
    expect(trained).toEqual(trainedAlone);
  });

  it("keeps the main thread responsive during a long forwardBackward", async () => {
    await engine.createAdapter("big", "bigger", LORA);
    const data = batch(2, 160, BIG.vocabSize);
    let ticks = 0;
    let maxGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 5);
    const t0 = performance.now();
    await engine.forwardBackward("big", data, "cross_entropy", undefined, false);
    const elapsed = performance.now() - t0;
    clearInterval(timer);
    expect(elapsed).toBeGreaterThan(100); // long enough to matter
    expect(ticks).toBeGreaterThan(elapsed / 5 / 4);
    expect(maxGap).toBeLessThan(100);
  });
});

describe("createLocalEngine in-process", () => {
  it("serves the same API on the calling thread", async () => {
    const engine = await createLocalEngine({
      kernels: "js",
      inProcess: true,
      presets: false,
      models: [{ name: "tiny", config: CFG }],
    });
    await engine.createAdapter("x", "tiny", LORA);
    const out = await engine.forwardBackward(
      "x",
      batch(1, 5, CFG.vocabSize),
      "cross_entropy",
      undefined,
      true,
    );
    expect(out.lossFnOutputs[0]!.logprobs!.data).toHaveLength(5);
    await engine.close();
  });
});

describe("adapter folders", () => {
  it("a PEFT folder with another lora_alpha loads with the same effective update", async () => {
    const engine = await createLocalEngine({
      kernels: "js",
      inProcess: true,
      presets: false,
      models: [{ name: "tiny", config: CFG }],
    });
    const dir = await mkdtemp(join(tmpdir(), "peft-alpha-"));
    try {
      await engine.createAdapter("x", "tiny", LORA);
      const data = batch(2, 6, CFG.vocabSize);
      await engine.forwardBackward("x", data, "cross_entropy", undefined, false);
      await engine.optimStep("x", { ...ADAM_DEFAULTS, learningRate: 1e-2 });
      await engine.saveAdapter("x", dir, { optimizer: false });
      const ref = await engine.forwardBackward("x", data, "cross_entropy", undefined, true);
      // Rewrite it as alpha = 16 with B doubled: the same (alpha / r) B A.
      const st = await engine.exportAdapterState("x");
      const tensors = new Map(
        [...st.weights].map(([k, t]) => [
          k,
          { shape: t.shape, data: k.endsWith("lora_B.weight") ? t.data.map((v) => v * 2) : t.data },
        ]),
      );
      await writeSafetensors(join(dir, "adapter_model.safetensors"), tensors, {
        base_model: "tiny",
        lora_rank: "4",
      });
      const cfg = JSON.parse(await readFile(join(dir, "adapter_config.json"), "utf8"));
      await writeFile(join(dir, "adapter_config.json"), JSON.stringify({ ...cfg, lora_alpha: 16 }));
      await engine.loadAdapter("y", dir, { optimizer: false });
      const out = await engine.forwardBackward("y", data, "cross_entropy", undefined, true);
      expect(out.metrics["loss:sum"]).toBeCloseTo(ref.metrics["loss:sum"]!, 5);
    } finally {
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

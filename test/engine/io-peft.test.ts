import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  checkPeftAdapterFits,
  getPreset,
  ModelFileError,
  parsePeftKey,
  peftKeyFor,
  readPeftAdapter,
  readSafetensorsHeader,
  writePeftAdapter,
  writeSafetensors,
} from "../../src/local/engine/io/index.js";
import { peftName } from "../../src/local/engine/model/lora.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tinker-peft-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config = getPreset("tiny-bytes").config; // d=256, q 256, kv 128, ff 768, V 264
const R = 4;

function filled(shape: number[], seed: number): { shape: number[]; data: Float32Array } {
  const data = new Float32Array(shape[0]! * shape[1]!);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(seed * 1000 + i);
  return { shape, data };
}

function adapterTensors(): Map<string, { shape: number[]; data: Float32Array }> {
  const t = new Map<string, { shape: number[]; data: Float32Array }>();
  let s = 1;
  for (const layer of [0, 3]) {
    t.set(peftKeyFor(layer, "q_proj", "A"), filled([R, 256], s++));
    t.set(peftKeyFor(layer, "q_proj", "B"), filled([256, R], s++));
    t.set(peftKeyFor(layer, "v_proj", "A"), filled([R, 256], s++));
    t.set(peftKeyFor(layer, "v_proj", "B"), filled([128, R], s++));
    t.set(peftKeyFor(layer, "down_proj", "A"), filled([R, 768], s++));
    t.set(peftKeyFor(layer, "down_proj", "B"), filled([256, R], s++));
  }
  t.set(peftKeyFor(null, "lm_head", "A"), filled([R, 256], s++));
  t.set(peftKeyFor(null, "lm_head", "B"), filled([264, R], s++));
  return t;
}

describe("PEFT names", () => {
  it("uses PEFT's key layout and agrees with the model's LoRA naming", () => {
    expect(peftKeyFor(0, "q_proj", "A")).toBe(
      "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
    );
    expect(peftKeyFor(12, "gate_proj", "B")).toBe(
      "base_model.model.model.layers.12.mlp.gate_proj.lora_B.weight",
    );
    expect(peftKeyFor(null, "lm_head", "A")).toBe("base_model.model.lm_head.lora_A.weight");
    expect(peftKeyFor(3, "down_proj", "B")).toBe(peftName("model.layers.3.mlp.down_proj", "B"));
    expect(peftKeyFor(1, "o_proj", "A")).toBe(peftName("model.layers.1.self_attn.o_proj", "A"));
    expect(peftKeyFor(null, "lm_head", "B")).toBe(peftName("lm_head", "B"));
    expect(() => peftKeyFor(null, "q_proj", "A")).toThrow(/needs a layer index/);
  });

  it("parses names back, including the .default infix, and rejects others", () => {
    expect(parsePeftKey("base_model.model.model.layers.7.mlp.up_proj.lora_B.weight")).toEqual({
      layer: 7,
      module: "up_proj",
      factor: "B",
    });
    expect(
      parsePeftKey("base_model.model.model.layers.2.self_attn.k_proj.lora_A.default.weight"),
    ).toEqual({ layer: 2, module: "k_proj", factor: "A" });
    expect(parsePeftKey("base_model.model.lm_head.lora_B.weight")).toEqual({
      layer: null,
      module: "lm_head",
      factor: "B",
    });
    expect(
      parsePeftKey("base_model.model.model.layers.2.mlp.q_proj.lora_A.weight"),
    ).toBeUndefined();
    expect(
      parsePeftKey("base_model.model.model.layers.2.self_attn.rotary.lora_A.weight"),
    ).toBeUndefined();
    expect(parsePeftKey("model.layers.0.self_attn.q_proj.weight")).toBeUndefined();
  });
});

describe("PEFT adapter folders", () => {
  it("round-trips weights and writes a PEFT adapter_config.json", async () => {
    const tensors = adapterTensors();
    await writePeftAdapter(dir, {
      baseModelName: "tiny-bytes",
      rank: R,
      alpha: 32,
      tensors,
      metadata: { lora_seed: "7" },
    });
    const cfg = JSON.parse(await readFile(join(dir, "adapter_config.json"), "utf8"));
    expect(cfg).toMatchObject({
      peft_type: "LORA",
      task_type: "CAUSAL_LM",
      r: 4,
      lora_alpha: 32,
      base_model_name_or_path: "tiny-bytes",
      target_modules: ["q_proj", "v_proj", "down_proj", "lm_head"],
      bias: "none",
      lora_dropout: 0,
      fan_in_fan_out: false,
      use_dora: false,
      use_rslora: false,
    });
    const header = await readSafetensorsHeader(join(dir, "adapter_model.safetensors"));
    expect(
      header.tensors.get("base_model.model.model.layers.3.self_attn.v_proj.lora_B.weight"),
    ).toMatchObject({ dtype: "F32", shape: [128, 4] });
    const back = await readPeftAdapter(dir);
    expect(back.rank).toBe(R);
    expect(back.alpha).toBe(32);
    expect(back.baseModelName).toBe("tiny-bytes");
    expect(back.metadata).toEqual({ format: "pt", lora_seed: "7" });
    expect(back.targetModules).toEqual(["q_proj", "v_proj", "down_proj", "lm_head"]);
    expect([...back.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [k, t] of tensors) expect(back.tensors.get(k)?.data).toEqual(t.data);
    checkPeftAdapterFits(back, config, dir);
  });

  it("reads adapters saved by PEFT with the .default infix and BF16 weights", async () => {
    const t = adapterTensors();
    const renamed = new Map([...t].map(([k, v]) => [k.replace(".weight", ".default.weight"), v]));
    await writeSafetensors(
      join(dir, "adapter_model.safetensors"),
      renamed,
      { format: "pt" },
      { dtype: "BF16" },
    );
    await writeFile(
      join(dir, "adapter_config.json"),
      JSON.stringify({
        peft_type: "LORA",
        r: 4,
        lora_alpha: 8,
        target_modules: ["q_proj", "v_proj", "down_proj", "lm_head"],
        task_type: "CAUSAL_LM",
        bias: "none",
        base_model_name_or_path: "Qwen/Qwen3-0.6B",
      }),
    );
    const back = await readPeftAdapter(dir);
    expect(back.tensors.get(peftKeyFor(0, "q_proj", "A"))?.dtype).toBe("BF16");
    expect(back.alpha).toBe(8);
  });

  it("rejects inconsistent tensors with errors naming the tensor", async () => {
    const t = adapterTensors();
    t.delete(peftKeyFor(3, "v_proj", "B"));
    await expect(
      writePeftAdapter(dir, { baseModelName: "m", rank: R, alpha: 32, tensors: t }),
    ).rejects.toThrow(
      /missing tensor "base_model\.model\.model\.layers\.3\.self_attn\.v_proj\.lora_B\.weight"/,
    );
    const t2 = adapterTensors();
    t2.set(peftKeyFor(0, "q_proj", "A"), filled([R + 1, 256], 9));
    await expect(
      writePeftAdapter(dir, { baseModelName: "m", rank: R, alpha: 32, tensors: t2 }),
    ).rejects.toThrow(/lora_A must be \[rank, in_features\] with rank 4/);
    const t3 = adapterTensors();
    t3.set("base_model.model.model.layers.0.self_attn.q_proj.weight", filled([2, 2], 1));
    await expect(
      writePeftAdapter(dir, { baseModelName: "m", rank: R, alpha: 32, tensors: t3 }),
    ).rejects.toThrow(/is not a LoRA factor name/);
    await expect(
      writePeftAdapter(dir, {
        baseModelName: "m",
        rank: R,
        alpha: 32,
        tensors: adapterTensors(),
        targetModules: ["q_proj"],
      }),
    ).rejects.toThrow(/does not list "v_proj"/);
    await expect(
      writePeftAdapter(dir, { baseModelName: "m", rank: 0, alpha: 32, tensors: adapterTensors() }),
    ).rejects.toThrow(ModelFileError);
  });

  it("rejects adapter features the engine cannot apply and adapters that do not fit the base", async () => {
    await writePeftAdapter(dir, {
      baseModelName: "m",
      rank: R,
      alpha: 32,
      tensors: adapterTensors(),
    });
    const cfgPath = join(dir, "adapter_config.json");
    const cfg = JSON.parse(await readFile(cfgPath, "utf8"));
    await writeFile(cfgPath, JSON.stringify({ ...cfg, use_dora: true }));
    await expect(readPeftAdapter(dir)).rejects.toThrow(/use_dora: true is not supported/);
    await writeFile(cfgPath, JSON.stringify({ ...cfg, peft_type: "IA3" }));
    await expect(readPeftAdapter(dir)).rejects.toThrow(/peft_type "IA3" is not supported/);
    await writeFile(cfgPath, JSON.stringify(cfg));
    const adapter = await readPeftAdapter(dir);
    const small = { ...config, numLayers: 2 };
    expect(() => checkPeftAdapterFits(adapter, small)).toThrow(
      /adapts layer 3 but the base model has 2 layers/,
    );
    const narrow = { ...config, intermediateSize: 512 };
    expect(() => checkPeftAdapterFits(adapter, narrow)).toThrow(
      /down_proj\.lora_A\.weight" has shape \[4,768\] but the base model needs \[4,512\]/,
    );
    await rm(cfgPath);
    await expect(readPeftAdapter(dir)).rejects.toThrow(/adapter_config\.json: file not found/);
  });
});

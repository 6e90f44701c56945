import { describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import {
  getLr,
  getModelAttributes,
  recommendedRenderer,
  recommendedRenderers,
} from "../../src/renderers/model-info.js";
import { Qwen3Renderer } from "../../src/renderers/qwen3.js";
import {
  BUILTIN_RENDERER_NAMES,
  getRegisteredRendererNames,
  getRenderer,
  isRendererRegistered,
  registerRenderer,
  unregisterRenderer,
} from "../../src/renderers/registry.js";
import { llama3Tokenizer, qwen3Tokenizer } from "./fixtures.js";

describe("renderer registry", () => {
  it("has the seven built-in renderers", () => {
    expect([...BUILTIN_RENDERER_NAMES].sort()).toEqual(
      [
        "llama3",
        "qwen3",
        "qwen3_5",
        "qwen3_5_disable_thinking",
        "qwen3_disable_thinking",
        "qwen3_instruct",
        "role_colon",
      ].sort(),
    );
    for (const name of BUILTIN_RENDERER_NAMES) {
      const tok = name === "llama3" ? llama3Tokenizer() : qwen3Tokenizer();
      expect(getRenderer(name, tok).name).toBe(name);
    }
    expect(() => getRenderer("llama3", qwen3Tokenizer())).toThrow(/needs the token <\|eot_id\|>/);
  });

  it("custom renderers are checked first and can be removed", () => {
    const tok = qwen3Tokenizer();
    registerRenderer("my_qwen", (t) => new Qwen3Renderer(t, "instruct"));
    registerRenderer("qwen3", (t) => new Qwen3Renderer(t, "disable_thinking"));
    expect(isRendererRegistered("my_qwen")).toBe(true);
    expect(getRegisteredRendererNames()).toEqual(["my_qwen", "qwen3"]);
    expect(getRenderer("my_qwen", tok).name).toBe("qwen3_instruct");
    expect(getRenderer("qwen3", tok).disablesThinking).toBe(true);
    expect(unregisterRenderer("qwen3")).toBe(true);
    expect(unregisterRenderer("my_qwen")).toBe(true);
    expect(getRenderer("qwen3", tok).disablesThinking).toBe(false);
    expect(() => getRenderer("my_qwen", tok)).toThrow(TinkerValidationError);
    expect(() => registerRenderer("", (t) => new Qwen3Renderer(t))).toThrow(/non-empty/);
  });
});

describe("model table", () => {
  it.each([
    ["Qwen/Qwen3-8B", "qwen3"],
    ["Qwen/Qwen3-8B:peft:131072", "qwen3"],
    ["Qwen/Qwen3-30B-A3B-Instruct-2507", "qwen3_instruct"],
    ["Qwen/Qwen3.5-9B", "qwen3_5"],
    ["Qwen/Qwen3.5-9B-Base", "role_colon"],
    ["Qwen/Qwen3.6-27B", "qwen3_5"],
    ["meta-llama/Llama-3.1-8B", "role_colon"],
    ["meta-llama/Llama-3.1-8B-Instruct", "llama3"],
    ["meta-llama/Llama-3.3-70B-Instruct", "llama3"],
    ["deepseek-ai/DeepSeek-V3.1-Base", "role_colon"],
  ])("%s -> %s", (model, renderer) => {
    expect(recommendedRenderer(model)).toBe(renderer);
  });

  it("lists alternatives and rejects unknown models with a typed error", () => {
    expect(recommendedRenderers("Qwen/Qwen3-32B")).toEqual(["qwen3", "qwen3_disable_thinking"]);
    expect(getModelAttributes("Qwen/Qwen3-8B-Base").isChat).toBe(false);
    expect(() => recommendedRenderer("acme/Model-1")).toThrow(/unknown model organisation "acme"/);
    expect(() => recommendedRenderer("Qwen/Qwen9")).toThrow(/unknown model "Qwen9"/);
    expect(() => recommendedRenderer("no-slash")).toThrow(/org\/model/);
  });
});

describe("getLr", () => {
  // Worked values from the cookbook reference (§4.7), LoRA.
  it.each([
    ["meta-llama/Llama-3.2-1B", 4.91e-4],
    ["meta-llama/Llama-3.2-3B", 3.58e-4],
    ["meta-llama/Llama-3.1-8B", 2.86e-4],
    ["meta-llama/Llama-3.1-70B", 1.66e-4],
    ["Qwen/Qwen3-8B", 4.73e-4],
    ["Qwen/Qwen3.5-9B", 4.73e-4],
    ["Qwen/Qwen3-30B-A3B", 4.99e-4],
    ["Qwen/Qwen3-32B", 4.65e-4],
  ])("%s -> %s", (model, lr) => {
    expect(getLr(model)).toBeCloseTo(lr, 6);
  });

  it("follows the formula, without the LoRA factor for full fine-tuning", () => {
    expect(getLr("meta-llama/Llama-3.1-8B", { isLora: false })).toBeCloseTo(
      5e-5 * (2000 / 4096) ** 0.781,
      12,
    );
    expect(getLr("Qwen/Custom-Qwen", { hiddenSize: 2000 })).toBeCloseTo(5e-4, 12);
    expect(() => getLr("openai/gpt-oss-20b")).toThrow(/calibrated only for Llama and Qwen/);
  });
});

describe("qwen3 with stripThinkingFromHistory: false", () => {
  it("keeps reasoning in history and has the extension property", () => {
    const tok = qwen3Tokenizer();
    const r = new Qwen3Renderer(tok, "thinking", { stripThinkingFromHistory: false });
    expect(r.hasExtensionProperty).toBe(true);
    const think = (t: string, a: string) => ({
      role: "assistant",
      content: [
        { type: "thinking" as const, thinking: t },
        { type: "text" as const, text: a },
      ],
    });
    const turns = [
      { role: "user", content: "2+2?" },
      think("add", "4"),
      { role: "user", content: "times 3?" },
      { role: "assistant", content: "12" },
      { role: "user", content: "minus 1?" },
    ];
    const startsWith = (a: number[], p: number[]) => p.every((t, i) => a[i] === t);
    for (const k of [2, 4]) {
      const seq = r.buildSupervisedExample(turns.slice(0, k)).modelInput.toInts();
      const nextPrompt = r.buildGenerationPrompt(turns.slice(0, k + 1)).toInts();
      expect(startsWith(nextPrompt, seq)).toBe(true);
    }
    const last = tok.decode(r.buildGenerationPrompt(turns).toInts());
    expect(last).toContain("<think>\nadd\n</think>\n\n4<|im_end|>");
    expect(last).toContain("<think>\n\n</think>\n\n12<|im_end|>");
    // The default (template) behaviour strips it.
    const stripped = tok.decode(getRenderer("qwen3", tok).buildGenerationPrompt(turns).toInts());
    expect(stripped).not.toContain("add");
  });
});

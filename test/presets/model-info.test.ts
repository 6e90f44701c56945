/**
 * The local presets are known to the model-info helpers: each has a recommended renderer that
 * renders its tokenizer's own chat template token for token, and a learning rate.
 */
import { describe, expect, it } from "vitest";
import {
  getLr,
  getModelAttributes,
  recommendedRenderer,
  recommendedRenderers,
} from "../../src/renderers/model-info.js";
import { getRenderer } from "../../src/renderers/registry.js";
import { loadTokenizer } from "../../src/tokenizers/loader.js";

const CHAT = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hi" },
  { role: "assistant", content: "Hello!" },
  { role: "user", content: "2+2?" },
];

describe("model info of the local presets", () => {
  it("recommends a renderer and a LoRA learning rate for each preset", () => {
    expect(recommendedRenderer("tiny-bytes")).toBe("qwen3_instruct");
    expect(recommendedRenderers("tiny-bytes")).toEqual(["qwen3_instruct", "role_colon"]);
    expect(recommendedRenderer("tiny-qwen3")).toBe("qwen3");
    expect(getModelAttributes("tiny-qwen3")).toMatchObject({ isChat: true, hiddenSize: 128 });
    expect(getLr("tiny-bytes")).toBeCloseTo(2e-3, 12);
    expect(getLr("tiny-qwen3")).toBeCloseTo(2e-3, 12);
    expect(getLr("tiny-qwen3", { isLora: false })).toBeCloseTo(2e-4, 12);
  });

  it("names the presets and the fix when a name is neither org/model nor a preset", () => {
    expect(() => recommendedRenderer("tiny-nothing")).toThrow(
      /org\/model.*tiny-bytes, tiny-qwen3.*pass a renderer name/,
    );
  });

  it.each(["tiny-bytes", "tiny-qwen3"])(
    "%s: the recommended renderer renders the tokenizer's chat template token for token",
    async (preset) => {
      const tokenizer = await loadTokenizer(preset, { offline: true });
      const renderer = getRenderer(recommendedRenderer(preset), tokenizer);
      const ours = renderer.buildGenerationPrompt(CHAT).toInts();
      const text = tokenizer.applyChatTemplate(CHAT, { addGenerationPrompt: true });
      expect(ours).toEqual(tokenizer.encode(text, { addSpecialTokens: false }));
    },
  );
});

import { describe, expect, expectTypeOf, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import type { SamplingClient } from "../../src/client/sampling-client.js";
import type { ModelInput } from "../../src/client/types/model-input.js";
import type { SampleResponse } from "../../src/client/types/outputs.js";
import type { SamplingParams } from "../../src/client/types/params.js";
import { TinkerMessageCompleter, TinkerTokenCompleter } from "../../src/completers/tinker.js";
import type { SamplingClientLike } from "../../src/completers/types.js";
import { getRenderer } from "../../src/renderers/registry.js";
import { qwen3Tokenizer } from "../renderers/fixtures.js";

/** Records each call and answers with scripted tokens. */
class ScriptedSampler implements SamplingClientLike {
  calls: Array<{ prompt: number[]; n: number; params: SamplingParams }> = [];
  constructor(
    private readonly tokens: number[],
    private readonly logprobs?: number[],
  ) {}
  async sample(
    prompt: ModelInput,
    numSamples: number,
    params: SamplingParams,
  ): Promise<SampleResponse> {
    this.calls.push({ prompt: prompt.toInts(), n: numSamples, params });
    return {
      sequences: [
        {
          stopReason: "stop",
          tokens: this.tokens,
          ...(this.logprobs ? { logprobs: this.logprobs } : {}),
        },
      ],
      promptCacheHitTokens: 0,
    };
  }
}

describe("completers", () => {
  it("the real SamplingClient fits the interface the completers take", () => {
    expectTypeOf<SamplingClient>().toMatchTypeOf<SamplingClientLike>();
  });

  it("TinkerTokenCompleter samples once with the stop condition and returns tokens + logprobs", async () => {
    const s = new ScriptedSampler([5, 6, 7], [-0.1, -0.2, -0.3]);
    const c = new TinkerTokenCompleter(s, { maxTokens: 64, temperature: 0.7, seed: 3 });
    const { ModelInput } = await import("../../src/client/types/model-input.js");
    const out = await c.complete(ModelInput.fromInts([1, 2]), [99], { maxTokens: 8 });
    expect(out).toEqual({ tokens: [5, 6, 7], logprobs: [-0.1, -0.2, -0.3], stopReason: "stop" });
    expect(s.calls).toEqual([
      { prompt: [1, 2], n: 1, params: { maxTokens: 8, temperature: 0.7, stop: [99], seed: 3 } },
    ]);
    expect(() => new TinkerTokenCompleter(s, { maxTokens: 0 })).toThrow(TinkerValidationError);
  });

  it("TinkerMessageCompleter prompts with the renderer and parses the reply, tool calls included", async () => {
    const tok = qwen3Tokenizer();
    const r = getRenderer("qwen3", tok);
    const reply = tok.encode(
      '<think>\nneed weather\n</think>\n\nChecking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call><|im_end|>',
      { addSpecialTokens: false },
    );
    const s = new ScriptedSampler(reply);
    const c = new TinkerMessageCompleter(s, r, { maxTokens: 128 });
    const msgs = [{ role: "user", content: "Weather in Oslo?" }] as const;
    const msg = await c.complete(msgs);
    expect(s.calls[0]!.prompt).toEqual(r.buildGenerationPrompt(msgs).toInts());
    expect(s.calls[0]!.params.stop).toEqual(r.getStopSequences());
    expect(s.calls[0]!.params.temperature).toBe(1);
    expect(msg).toEqual({
      role: "assistant",
      content: [
        { type: "thinking", thinking: "need weather" },
        { type: "text", text: "Checking." },
      ],
      toolCalls: [
        { type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } },
      ],
    });
    const cut = await new TinkerMessageCompleter(
      new ScriptedSampler(tok.encode("half a", { addSpecialTokens: false })),
      r,
      {
        maxTokens: 2,
      },
    ).completeWithTermination(msgs);
    expect(cut.termination).toBe("malformed");
  });
});

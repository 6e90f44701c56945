import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { encodedText, ModelInput } from "../../src/client/types/model-input.js";
import { TensorData } from "../../src/client/types/tensor-data.js";
import { getRenderer } from "../../src/renderers/registry.js";
import { type Message, TrainOnWhat } from "../../src/renderers/types.js";
import {
  conversationToDatum,
  datumFromModelInputWeights,
  datumFromTokensWeights,
  rightShiftedInputAndTargets,
} from "../../src/supervised/datum.js";
import { formatDatumColored } from "../../src/supervised/display.js";
import { GSM8K_DIR } from "../fixture-paths.js";
import { qwen3Tokenizer } from "../renderers/fixtures.js";

const f32 = (d: { lossFnInputs: Record<string, { toArray(): unknown }> }, k: string) =>
  d.lossFnInputs[k]!.toArray() as number[];

describe("datumFromModelInputWeights", () => {
  it("shifts by one: input = tokens[:-1], targets = tokens[1:], weights = weights[1:]", () => {
    const d = datumFromModelInputWeights(
      ModelInput.fromInts([10, 11, 12, 13, 14, 15]),
      [0, 0, 1, 1, 1, 0],
    );
    expect(d.modelInput.toInts()).toEqual([10, 11, 12, 13, 14]);
    expect(f32(d, "target_tokens")).toEqual([11, 12, 13, 14, 15]);
    expect(f32(d, "weights")).toEqual([0, 1, 1, 1, 0]);
    expect(d.lossFnInputs.weights!.dtype).toBe("float32");
    expect(d.lossFnInputs.target_tokens!.dtype).toBe("int64");
  });

  it("mean reduction divides by the weight sum; an all-zero example stays zero", () => {
    const d = datumFromModelInputWeights(
      ModelInput.fromInts([1, 2, 3, 4, 5]),
      [0, 1, 1, 0, 2],
      undefined,
      "mean",
    );
    const w = f32(d, "weights");
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(w).toEqual([0.25, 0.25, 0, 0.5]);
    const z = datumFromModelInputWeights(
      ModelInput.fromInts([1, 2, 3]),
      [1, 0, 0],
      undefined,
      "mean",
    );
    expect(f32(z, "weights")).toEqual([0, 0]);
  });

  it("truncates to maxLength before shifting", () => {
    const d = datumFromModelInputWeights(
      ModelInput.fromInts([1, 2, 3, 4, 5, 6]),
      [1, 1, 1, 1, 1, 1],
      4,
    );
    expect(d.modelInput.toInts()).toEqual([1, 2, 3]);
    expect(f32(d, "target_tokens")).toEqual([2, 3, 4]);
    expect(f32(d, "weights")).toHaveLength(3);
  });

  it("drops an image chunk that does not fit whole, and zeroes targets at image positions", () => {
    const img = {
      type: "image" as const,
      data: new Uint8Array([1]),
      format: "png" as const,
      expectedTokens: 2,
    };
    const input = new ModelInput([encodedText([1, 2, 3]), img, encodedText([4, 5])]);
    const cut = datumFromModelInputWeights(input, [0, 0, 0, 0, 0, 1, 1], 4);
    expect(cut.modelInput.toInts()).toEqual([1, 2]);
    const full = datumFromModelInputWeights(input, [0, 0, 0, 0, 0, 1, 1]);
    expect(f32(full, "target_tokens")).toEqual([2, 3, 0, 0, 4, 5]);
    expect(full.modelInput.length).toBe(6);
    expect(full.modelInput.chunks.map((c) => c.type)).toEqual([
      "encoded_text",
      "image",
      "encoded_text",
    ]);
  });

  it("rejects bad input with the field named", () => {
    const mi = ModelInput.fromInts([1, 2, 3]);
    expect(() => datumFromModelInputWeights(mi, [1, 1])).toThrow(/one weight per token/);
    expect(() => datumFromModelInputWeights(mi, [1, 1, 1], 1)).toThrow(TinkerValidationError);
    expect(() => datumFromModelInputWeights(mi, [1, 1, 1], undefined, "sum" as "mean")).toThrow(
      /reduction/,
    );
    expect(() => rightShiftedInputAndTargets(ModelInput.fromInts([1]))).toThrow(
      /at least 2 tokens/,
    );
    expect(() => datumFromTokensWeights([1, 2, 3], [1, 1])).toThrow(/same length/);
  });

  it("datumFromTokensWeights is the unnormalised legacy form", () => {
    const d = datumFromTokensWeights([5, 6, 7, 8], [0, 1, 1, 1], 3);
    expect(d.modelInput.toInts()).toEqual([5, 6]);
    expect(f32(d, "target_tokens")).toEqual([6, 7]);
    expect(f32(d, "weights")).toEqual([1, 1]);
  });
});

describe("conversationToDatum (qwen3, GSM8K)", () => {
  const row = JSON.parse(readFileSync(join(GSM8K_DIR, "train.jsonl"), "utf8").split("\n")[0]!) as {
    question: string;
    answer: string;
  };
  const conv: Message[] = [
    { role: "user", content: row.question },
    { role: "assistant", content: row.answer },
  ];

  it("trains exactly the answer and <|im_end|>, with mean weights summing to 1", () => {
    const tok = qwen3Tokenizer();
    const r = getRenderer("qwen3", tok);
    const full = r.buildSupervisedExample(conv).modelInput.toInts();
    const d = conversationToDatum(conv, r, undefined);
    const targets = f32(d, "target_tokens");
    const w = f32(d, "weights");
    expect(d.modelInput.toInts()).toEqual(full.slice(0, -1));
    expect(targets).toEqual(full.slice(1));
    expect(w).toHaveLength(targets.length);
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    const trained = targets.filter((_, i) => w[i]! > 0);
    expect(tok.decode(trained)).toBe(`<think>\n\n</think>\n\n${row.answer}<|im_end|>`);
    const none = conversationToDatum(conv, r, undefined, TrainOnWhat.ALL_ASSISTANT_MESSAGES, {
      reduction: "none",
    });
    expect(f32(none, "weights").reduce((a, b) => a + b, 0)).toBe(trained.length);
  });

  it("truncates long conversations to maxLength", () => {
    const r = getRenderer("qwen3", qwen3Tokenizer());
    const d = conversationToDatum(conv, r, 32);
    expect(d.modelInput.length).toBe(31);
    expect(f32(d, "target_tokens")).toHaveLength(31);
  });
});

describe("formatDatumColored", () => {
  afterEach(() => {
    delete process.env.NO_COLOR;
  });

  it("colours by weight, and marks spans in plain text when NO_COLOR is set", () => {
    const tok = qwen3Tokenizer();
    const r = getRenderer("role_colon", tok);
    const d = conversationToDatum(
      [
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Yo" },
      ],
      r,
      undefined,
    );
    const colored = formatDatumColored(d, tok, { color: true });
    expect(colored).toContain("\x1b[32m Yo\n\nUser:\x1b[0m");
    expect(colored).toContain("\x1b[33mUser: Hi\n\nAssistant:\x1b[0m");
    process.env.NO_COLOR = "1";
    expect(formatDatumColored(d, tok)).toBe("User: Hi\n\nAssistant:[[ Yo\n\nUser:]]");
    expect(() => formatDatumColored(d, tok, { key: "advantages" })).toThrow(TinkerValidationError);
    expect(() => formatDatumColored(d, tok, { key: "advantages" })).toThrow(/advantages/);
    const negative = (d.lossFnInputs.weights!.toArray() as number[]).map((x) => -x);
    const adv = {
      ...d,
      lossFnInputs: { ...d.lossFnInputs, advantages: TensorData.fromArray(negative, "float32") },
    };
    expect(formatDatumColored(adv, tok, { key: "advantages", color: true })).toContain(
      "\x1b[31m Yo",
    );
    expect(formatDatumColored(adv, tok, { key: "advantages", color: false })).toContain("{{ Yo");
  });
});

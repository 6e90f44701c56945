import { createWriteStream, readdirSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { ConversationFileDataset } from "../../src/datasets/conversation-file.js";
import { DatasetFormatError } from "../../src/datasets/errors.js";
import { expectObject, readJsonl, readJsonlStream } from "../../src/datasets/jsonl.js";

async function tmpFile(name: string, content: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tinker-ds-"));
  const p = join(dir, name);
  await writeFile(p, content);
  return p;
}

describe("readJsonlStream", () => {
  it("yields rows with 1-based line numbers and ignores blank lines, BOM and CRLF", async () => {
    const p = await tmpFile("a.jsonl", '\uFEFF{"a":1}\r\n\r\n{"a":2}\n  \n{"a":3}');
    const rows = [];
    for await (const r of readJsonlStream<{ a: number }>(p)) rows.push(r);
    expect(rows).toEqual([
      { line: 1, value: { a: 1 } },
      { line: 3, value: { a: 2 } },
      { line: 5, value: { a: 3 } },
    ]);
  });

  it("a malformed row throws an error naming file and line", async () => {
    const p = await tmpFile("bad.jsonl", '{"a":1}\n{"a":\n{"a":3}\n');
    const err = await readJsonl(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect((err as DatasetFormatError).line).toBe(2);
    expect((err as DatasetFormatError).file).toBe(p);
    expect((err as Error).message).toMatch(/bad.jsonl:2: invalid JSON/);
  });

  it("skips and counts malformed rows when asked, including rows the parser rejects", async () => {
    const p = await tmpFile("mixed.jsonl", '{"a":1}\nnot json\n[1,2]\n{"a":4}\n');
    const stream = readJsonlStream(p, { onBadRow: "skip", parse: (v) => expectObject(v) });
    const values = [];
    for await (const r of stream) values.push(r.value);
    expect(values).toEqual([{ a: 1 }, { a: 4 }]);
    expect(stream.skipped).toBe(2);
    expect(stream.skippedRows.map((s) => s.line)).toEqual([2, 3]);
    expect(stream.skippedRows[1]!.reason).toMatch(/expected a JSON object, got an array/);
  });

  it("a missing file is a validation error naming the path", async () => {
    await expect(readJsonl("/nonexistent/x.jsonl")).rejects.toThrow(TinkerValidationError);
    await expect(readJsonl("/nonexistent/x.jsonl")).rejects.toThrow(/x\.jsonl: ENOENT/);
    const dir = await mkdtemp(join(tmpdir(), "tinker-ds-"));
    await expect(readJsonl(dir)).rejects.toThrow(TinkerValidationError);
    await expect(readJsonl(dir)).rejects.toThrow(/it is not a file/);
  });

  it("streams a large file without loading it whole and can stop early", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tinker-ds-"));
    const p = join(dir, "big.jsonl");
    const ws = createWriteStream(p);
    const n = 50_000;
    for (let i = 0; i < n; i++) ws.write(`{"i":${i},"pad":"${"x".repeat(40)}"}\n`);
    await new Promise<void>((res) => ws.end(res));
    let count = 0;
    let last = -1;
    for await (const r of readJsonlStream<{ i: number }>(p)) {
      if (r.value.i !== last + 1) break;
      last = r.value.i;
      count++;
    }
    expect(count).toBe(n);
    expect(last).toBe(n - 1);
    let early = 0;
    for await (const _ of readJsonlStream(p)) if (++early === 10) break;
    expect(early).toBe(10);
  });

  it("closes the file when the consumer stops early or a bad row throws", async () => {
    const p = await tmpFile("fd.jsonl", '{"a":1}\n{"a":2}\nnot json\n');
    const openFds = () => readdirSync("/proc/self/fd").length;
    const before = openFds();
    for (let i = 0; i < 20; i++) {
      for await (const _ of readJsonlStream(p)) break;
      await readJsonl(p).catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(openFds()).toBeLessThan(before + 5);
  });
});

describe("ConversationFileDataset", () => {
  const convo = (i: number) =>
    JSON.stringify({
      messages: [
        { role: "user", content: `q${i}` },
        { role: "assistant", content: [{ type: "text", text: `a${i}` }] },
      ],
    });

  it("shuffles with a seed and holds out the first testSize rows as the test split", async () => {
    const p = await tmpFile("c.jsonl", range(20).map(convo).join("\n"));
    const ds = await ConversationFileDataset.load(p, { testSize: 5, shuffleSeed: 3 });
    expect(ds.train.length).toBe(15);
    expect(ds.test.length).toBe(5);
    const again = await ConversationFileDataset.load(p, { testSize: 5, shuffleSeed: 3 });
    expect(again.test).toEqual(ds.test);
    const other = await ConversationFileDataset.load(p, { testSize: 5, shuffleSeed: 4 });
    expect(other.test).not.toEqual(ds.test);
    const ids = [...ds.train, ...ds.test].map((c) => c[0]!.content).sort();
    expect(ids).toEqual(
      range(20)
        .map((i) => `q${i}`)
        .sort(),
    );
    expect(ds.test[0]![1]!.content).toEqual([{ type: "text", text: expect.any(String) }]);
    const batches = ds.trainBatches(4, { seed: 1 });
    expect(batches.length).toBe(3); // 15 // 4, drop-last
  });

  it("rejects rows without messages, naming file and line; or skips them", async () => {
    const p = await tmpFile(
      "c.jsonl",
      [convo(0), '{"text": "hi"}', convo(2), '{"messages":[{"content":"x"}]}'].join("\n"),
    );
    await expect(ConversationFileDataset.load(p)).rejects.toThrow(
      /c\.jsonl:2: expected \{"messages": \[\.\.\.\]\}, but "messages" is nothing/,
    );
    const ds = await ConversationFileDataset.load(p, { onBadRow: "skip" });
    expect(ds.train.length).toBe(2);
    expect(ds.skipped).toBe(2);
    expect(ds.skippedRows[1]!.reason).toMatch(/messages\[0\]\.role must be a non-empty string/);
  });

  it("validates testSize", async () => {
    const p = await tmpFile("c.jsonl", convo(0));
    await expect(ConversationFileDataset.load(p, { testSize: 2 })).rejects.toThrow(/testSize 2/);
    await expect(ConversationFileDataset.load(p, { testSize: -1 })).rejects.toThrow(/testSize/);
  });
});

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  APIConnectionError,
  APIResponseValidationError,
  APIStatusError,
} from "../../src/client/errors.js";
import { DatasetFormatError, DatasetNotFoundError } from "../../src/datasets/errors.js";
import { Gsm8k } from "../../src/datasets/gsm8k.js";
import { loadHubDataset, selectDataFiles } from "../../src/datasets/hub.js";
import { type FakeHub, startFakeHub } from "./fake-hub.js";

function parquet(columns: Record<string, string[] | number[]>): Uint8Array {
  const columnData = Object.entries(columns).map(([name, data]) => ({
    name,
    data,
    type: typeof data[0] === "number" ? ("INT32" as const) : ("STRING" as const),
  }));
  return new Uint8Array(parquetWriteBuffer({ columnData }));
}

const enc = (s: string) => new TextEncoder().encode(s);

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const TRAIN = {
  question: ["What is 2+3?", "Tom has 4 apples and eats 1. How many are left?", "What is 10*10?"],
  answer: ["2+3=<<2+3=5>>5\n#### 5", "4-1=<<4-1=3>>3\n#### 3", "10*10=100\n#### 1,000"],
};
const TEST = {
  question: ["What is 1+1?", "What is 6/2?"],
  answer: ["#### 2", "#### 3"],
};

let hub: FakeHub;
let cacheRoot: string;

beforeAll(async () => {
  hub = await startFakeHub({
    "openai/gsm8k": {
      files: {
        "README.md": enc("# gsm8k"),
        ".gitattributes": enc("*.parquet filter=lfs"),
        "main/train-00000-of-00001.parquet": parquet(TRAIN),
        "main/test-00000-of-00001.parquet": parquet(TEST),
        "socratic/train-00000-of-00001.parquet": parquet({ question: ["s?"], answer: ["#### 9"] }),
        "socratic/test-00000-of-00001.parquet": parquet({ question: ["t?"], answer: ["#### 8"] }),
      },
    },
    "acme/sharded": {
      files: {
        "data/train-00000-of-00002.parquet": parquet({ id: [0, 1], text: ["a", "b"] }),
        "data/train-00001-of-00002.parquet": parquet({ id: [2], text: ["c"] }),
        "data/validation-00000-of-00001.parquet": parquet({ id: [9], text: ["v"] }),
      },
    },
    "acme/jsonl": {
      files: {
        "data/train.jsonl": enc('{"x":1}\n{"x":2}\nnot json\n{"x":4}\n'),
        "data/test.jsonl": enc('{"x":10}\n'),
      },
    },
    "acme/jsonarray": {
      files: {
        "data/train.json": enc('[{"x":1},\n {"x":2}]'),
        "data/test.json": enc('[{"x":1}, 3, {"x":5}]'),
        "data/validation.json": enc('[{"x":1},'),
      },
    },
    "acme/evil": {
      // a repo path with ".." is never selected; a converted file name with ".." is refused
      files: { "data/../../../escape/train.jsonl": enc('{"x":1}\n') },
      converted: { "default/train": [{ filename: "../../../escape.parquet", bytes: enc("x") }] },
    },
    "acme/gated": {
      token: "hf_secret",
      files: { "data/train.jsonl": enc('{"ok":true}\n') },
    },
    "acme/scripted": {
      files: { "scripted.py": enc("# a loading script"), "README.md": enc("hi") },
      converted: {
        "default/train": [
          { filename: "0000.parquet", bytes: parquet({ q: ["a", "b"] }) },
          { filename: "0001.parquet", bytes: parquet({ q: ["c"] }) },
        ],
      },
    },
  });
  cacheRoot = await mkdtemp(join(tmpdir(), "tinker-hub-cache-"));
});

afterAll(async () => {
  await hub.close();
  await rm(cacheRoot, { recursive: true, force: true });
});

const opts = (dir: string) => ({
  hubUrl: hub.url,
  datasetsServerUrl: hub.url,
  cacheDir: join(cacheRoot, dir),
});

describe("loadHubDataset against a local hub", () => {
  it("loads a config/split from the repo's parquet files, paginating the tree listing", async () => {
    hub.log.length = 0;
    const ds = await loadHubDataset({
      repo: "openai/gsm8k",
      config: "main",
      split: "train",
      ...opts("a"),
    });
    expect(ds.source).toBe("repo");
    expect(ds.fromCache).toBe(false);
    expect(ds.rows).toEqual(
      TRAIN.question.map((q, i) => ({ question: q, answer: TRAIN.answer[i] })),
    );
    expect(hub.log.filter((l) => l.includes("/tree/main")).length).toBeGreaterThan(1); // paginated
    expect(hub.log.some((l) => l.includes("/resolve/main/main/train-00000-of-00001.parquet"))).toBe(
      true,
    );
    expect(hub.log.some((l) => l.includes("socratic"))).toBe(false);
  });

  it("serves a second load from the cache without re-downloading unchanged files", async () => {
    await loadHubDataset({ repo: "openai/gsm8k", config: "main", split: "test", ...opts("b") });
    hub.log.length = 0;
    const again = await loadHubDataset({
      repo: "openai/gsm8k",
      config: "main",
      split: "test",
      ...opts("b"),
    });
    expect(again.fromCache).toBe(true);
    expect(again.rows.length).toBe(2);
    expect(hub.log.every((l) => l.includes("/tree/"))).toBe(true); // only the listing
  });

  it("re-downloads a file whose content changed on the hub", async () => {
    const dir = opts("c");
    await loadHubDataset({ repo: "acme/sharded", split: "validation", ...dir });
    const repo = hub.repos.get("acme/sharded")!;
    const old = repo.files["data/validation-00000-of-00001.parquet"]!;
    repo.files["data/validation-00000-of-00001.parquet"] = parquet({
      id: [9, 10],
      text: ["v", "w"],
    });
    try {
      const ds = await loadHubDataset({ repo: "acme/sharded", split: "validation", ...dir });
      expect(ds.fromCache).toBe(false);
      expect(ds.rows.map((r) => r["id"])).toEqual([9, 10]);
    } finally {
      repo.files["data/validation-00000-of-00001.parquet"] = old;
    }
  });

  it("concatenates shards in order and converts INT32 columns to numbers", async () => {
    const ds = await loadHubDataset({ repo: "acme/sharded", split: "train", ...opts("d") });
    expect(ds.rows).toEqual([
      { id: 0, text: "a" },
      { id: 1, text: "b" },
      { id: 2, text: "c" },
    ]);
    expect(ds.files.length).toBe(2);
  });

  it("reads JSONL data files, with onBadRow applied", async () => {
    await expect(
      loadHubDataset({ repo: "acme/jsonl", split: "train", ...opts("e") }),
    ).rejects.toThrow(/train\.jsonl:3: invalid JSON/);
    const ds = await loadHubDataset({
      repo: "acme/jsonl",
      split: "train",
      onBadRow: "skip",
      ...opts("e"),
    });
    expect(ds.rows).toEqual([{ x: 1 }, { x: 2 }, { x: 4 }]);
    expect(ds.skipped).toBe(1);
  });

  it("reads JSON-array data files; bad elements and truncated files name the file", async () => {
    const train = await loadHubDataset({ repo: "acme/jsonarray", split: "train", ...opts("e2") });
    expect(train.rows).toEqual([{ x: 1 }, { x: 2 }]);
    await expect(
      loadHubDataset({ repo: "acme/jsonarray", split: "test", ...opts("e2") }),
    ).rejects.toThrow(/test\.json: element 1: expected a JSON object, got number 3/);
    const test = await loadHubDataset({
      repo: "acme/jsonarray",
      split: "test",
      onBadRow: "skip",
      ...opts("e2"),
    });
    expect(test.rows).toEqual([{ x: 1 }, { x: 5 }]);
    expect(test.skipped).toBe(1);
    const err = await loadHubDataset({
      repo: "acme/jsonarray",
      split: "validation",
      ...opts("e2"),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect((err as Error).message).toMatch(/validation\.json: invalid JSON/);
    expect((err as Error).cause).toBeInstanceOf(SyntaxError);
  });

  it("falls back to the datasets-server parquet conversion when the repo has no data files", async () => {
    hub.log.length = 0;
    const ds = await loadHubDataset({
      repo: "acme/scripted",
      config: "default",
      split: "train",
      ...opts("f"),
    });
    expect(ds.source).toBe("datasets-server");
    expect(ds.rows).toEqual([{ q: "a" }, { q: "b" }, { q: "c" }]);
    expect(hub.log.some((l) => l.startsWith("GET /parquet?dataset=acme%2Fscripted"))).toBe(true);
  });

  it("a datasets-server answer that is not JSON is an APIResponseValidationError keeping its cause", async () => {
    const garbling: typeof fetch = async (input, init) =>
      String(input).includes("/parquet?")
        ? new Response("<html>proxy error</html>", { status: 200 })
        : fetch(input, init);
    const err = await loadHubDataset({
      repo: "acme/scripted",
      config: "default",
      split: "train",
      fetch: garbling,
      ...opts("f2"),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIResponseValidationError);
    expect((err as Error).message).toMatch(
      /"acme\/scripted".*invalid JSON; check datasetsServerUrl/,
    );
    expect((err as Error).cause).toBeInstanceOf(SyntaxError);
  });

  it("offline: reads the cache and never touches the network", async () => {
    const dir = opts("g");
    await loadHubDataset({ repo: "openai/gsm8k", config: "main", split: "test", ...dir });
    hub.log.length = 0;
    const ds = await loadHubDataset({
      repo: "openai/gsm8k",
      config: "main",
      split: "test",
      offline: true,
      cacheDir: dir.cacheDir,
      hubUrl: "http://127.0.0.1:9", // would fail if used
    });
    expect(ds.rows.length).toBe(2);
    expect(ds.fromCache).toBe(true);
    expect(hub.log).toEqual([]);
  });

  it("offline with nothing cached: a clear DatasetNotFoundError", async () => {
    const err = await loadHubDataset({
      repo: "openai/gsm8k",
      config: "main",
      split: "train",
      offline: true,
      cacheDir: join(cacheRoot, "empty"),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetNotFoundError);
    expect((err as Error).message).toMatch(
      /offline mode: "openai\/gsm8k" config "main" split "train" \(revision main\) is not in the cache/,
    );
    expect(hub.log.length).toBe(0);
  });

  it("uses the cache when the hub is unreachable", async () => {
    const dir = opts("h");
    await loadHubDataset({ repo: "acme/sharded", split: "train", ...dir });
    const ds = await loadHubDataset({
      repo: "acme/sharded",
      split: "train",
      cacheDir: dir.cacheDir,
      hubUrl: "http://127.0.0.1:9",
    });
    expect(ds.rows.length).toBe(3);
  });

  it("an unreachable hub with nothing cached is an APIConnectionError naming the dataset", async () => {
    const err = await loadHubDataset({
      repo: "acme/sharded",
      split: "train",
      cacheDir: join(cacheRoot, "unreachable"),
      hubUrl: `http://127.0.0.1:${await closedPort()}`,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIConnectionError);
    expect((err as Error).message).toMatch(
      /"acme\/sharded" split "train".*cannot reach the hub \(ECONNREFUSED\)/,
    );
  });

  it("unknown repos and splits give DatasetNotFoundError; bad ids a validation error", async () => {
    await expect(
      loadHubDataset({ repo: "nobody/nothing", split: "train", ...opts("i") }),
    ).rejects.toThrow(DatasetNotFoundError);
    await expect(
      loadHubDataset({ repo: "openai/gsm8k", config: "main", split: "validation", ...opts("i") }),
    ).rejects.toThrow(
      /no parquet\/JSONL files for this config and split \(top-level folders: main, socratic\)/,
    );
    await expect(loadHubDataset({ repo: "a b", split: "train", ...opts("i") })).rejects.toThrow(
      /repo must be/,
    );
    const entries = await readdir(join(cacheRoot, "i")).catch(() => []);
    expect(entries.length).toBeLessThanOrEqual(1);
  });

  it("gated datasets: 401 says a token is needed; the token is sent when given", async () => {
    const err = await loadHubDataset({ repo: "acme/gated", split: "train", ...opts("k") }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(APIStatusError);
    expect((err as APIStatusError).status).toBe(401);
    expect((err as Error).message).toMatch(/accessToken \/ HF_TOKEN/);
    const ds = await loadHubDataset({
      repo: "acme/gated",
      split: "train",
      accessToken: "hf_secret",
      ...opts("k"),
    });
    expect(ds.rows).toEqual([{ ok: true }]);
  });

  it("refuses server-given paths that would escape the cache folder", async () => {
    await expect(
      loadHubDataset({ repo: "acme/evil", split: "train", ...opts("l") }),
    ).rejects.toThrow(/refusing a data file path outside the dataset folder/);
  });

  it("Gsm8k.load reads openai/gsm8k config main from the hub", async () => {
    const ds = await Gsm8k.load({ split: "train", hub: opts("j") });
    expect(ds.length).toBe(3);
    expect(ds.problems.map((p) => p.answer)).toEqual(["5", "3", "1000"]);
    expect(ds.source).toBe("hf://openai/gsm8k");
  });
});

describe("selectDataFiles", () => {
  it("matches the split by path segment, scoped to the config folder", () => {
    const paths = [
      "main/train-00000-of-00002.parquet",
      "main/train-00001-of-00002.parquet",
      "main/test-00000-of-00001.parquet",
      "main/trainer_notes.json",
      "other/train-00000-of-00001.parquet",
      "data/train.jsonl",
      "README.md",
    ];
    expect(selectDataFiles(paths, "main", "train")).toEqual([
      "main/train-00000-of-00002.parquet",
      "main/train-00001-of-00002.parquet",
    ]);
    expect(selectDataFiles(paths, undefined, "test")).toEqual(["main/test-00000-of-00001.parquet"]);
  });
});

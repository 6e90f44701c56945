import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findCachedSnapshot } from "../../src/hub/cache.js";
import {
  clearTokenizerCache,
  loadTokenizer,
  TokenizerLoadError,
} from "../../src/tokenizers/loader.js";

const COMMIT = "abcdefabcdefabcdefabcdefabcdefabcdefabcd";
const FILES: Record<string, string> = {
  "tokenizer.json": JSON.stringify({
    version: "1.0",
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: "Whitespace" },
    post_processor: null,
    decoder: null,
    model: { type: "WordLevel", vocab: { hub: 0, hello: 1, "[UNK]": 2 }, unk_token: "[UNK]" },
  }),
  "tokenizer_config.json": JSON.stringify({ chat_template: "{{ messages[0].content }}!" }),
};
const oid = (body: string) => createHash("sha1").update(body).digest("hex");

/** A stand-in for the Hugging Face hub: paths-info and ranged resolve downloads of one repo. */
let server: Server;
let hubUrl = "";
const requests: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const info = /^\/api\/models\/acme\/tiny-tok\/paths-info\/main$/.exec(req.url ?? "");
    if (req.method === "POST" && info) {
      let body = "";
      req.on("data", (c: Buffer) => {
        body += c.toString();
      });
      req.on("end", () => {
        const { paths } = JSON.parse(body) as { paths: string[] };
        const out = paths
          .filter((p) => p in FILES)
          .map((p) => ({
            type: "file",
            path: p,
            oid: oid(FILES[p]!),
            size: FILES[p]!.length,
            lastCommit: { id: COMMIT, title: "init", date: "2026-01-01T00:00:00.000Z" },
          }));
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify(out));
      });
      return;
    }
    const file = /^\/acme\/tiny-tok\/resolve\/main\/(.+)$/.exec(req.url ?? "")?.[1];
    if (req.method === "GET" && file !== undefined && file in FILES) {
      const body = Buffer.from(FILES[file]!);
      const range = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? "");
      res.setHeader("etag", `"${oid(FILES[file]!)}"`);
      if (range) {
        const start = Number(range[1]);
        const end = Math.min(Number(range[2]), body.length - 1);
        res.statusCode = 206;
        res.setHeader("content-range", `bytes ${start}-${end}/${body.length}`);
        res.end(body.subarray(start, end + 1));
      } else {
        res.end(body);
      }
      return;
    }
    res.statusCode = 404;
    res.setHeader("x-error-code", "RepoNotFound");
    res.end(JSON.stringify({ error: "Repository not found" }));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  hubUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((ok) => server.close(() => ok()));
});

describe("loadTokenizer from the hub", () => {
  it("downloads into the HF cache layout, then loads offline from it", async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), "hf-hub-"));
    const tok = await loadTokenizer("acme/tiny-tok:peft:1", { hubUrl, cacheDir });
    expect(tok.name).toBe("acme/tiny-tok");
    expect(tok.encode("hello hub")).toEqual([1, 0]);
    expect(tok.applyChatTemplate([{ role: "user", content: "hey" }])).toBe("hey!");
    const snapshot = join(cacheDir, "models--acme--tiny-tok", "snapshots", COMMIT);
    expect(readFileSync(join(snapshot, "tokenizer.json"), "utf8")).toBe(FILES["tokenizer.json"]);
    expect(readFileSync(join(cacheDir, "models--acme--tiny-tok", "refs", "main"), "utf8")).toBe(
      COMMIT,
    );
    expect(findCachedSnapshot("acme/tiny-tok", "main", cacheDir)).toBe(snapshot);

    clearTokenizerCache();
    const before = requests.length;
    const again = await loadTokenizer("acme/tiny-tok", { hubUrl, cacheDir, offline: true });
    expect(again.encode("hub")).toEqual([0]);
    expect(requests.length).toBe(before);
  });

  it("reports a missing repository as a TokenizerLoadError naming the id", async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), "hf-hub-"));
    const err = await loadTokenizer("acme/missing", { hubUrl, cacheDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenizerLoadError);
    expect((err as Error).message).toMatch(/acme\/missing.*could not download tokenizer\.json/);
  });
});

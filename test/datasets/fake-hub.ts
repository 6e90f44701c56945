/**
 * A loopback HTTP server that answers like the Hugging Face hub and datasets-server for the requests
 * the hub loader makes: the repo tree listing (paginated with a `Link` header), `resolve` downloads
 * (with the `Range: bytes=0-0` probe `@huggingface/hub` sends first), and the datasets-server
 * `/parquet` listing plus the parquet files it points at.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeRepo {
  /** Repo path -> file bytes. */
  files: Record<string, Uint8Array>;
  /** Datasets-server parquet conversion: `config/split` -> files. */
  converted?: Record<string, { filename: string; bytes: Uint8Array }[]>;
  /** Only requests with `Authorization: Bearer <token>` get in; others get 401. */
  token?: string;
}

export interface FakeHub {
  url: string;
  /** Every request as `METHOD path?query`. */
  log: string[];
  repos: Map<string, FakeRepo>;
  close(): Promise<void>;
}

const PAGE = 2; // small pages so that pagination is exercised

export async function startFakeHub(repos: Record<string, FakeRepo>): Promise<FakeHub> {
  const map = new Map(Object.entries(repos));
  const log: string[] = [];
  let base = "";
  const server: Server = createServer((req, res) => {
    log.push(`${req.method} ${req.url}`);
    try {
      handle(req, res);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });

  function json(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  }

  function notFound(res: ServerResponse, code: string) {
    res.writeHead(404, { "content-type": "application/json", "x-error-code": code });
    res.end(JSON.stringify({ error: code }));
  }

  function handle(req: IncomingMessage, res: ServerResponse) {
    const u = new URL(req.url ?? "/", base);
    const tree = /^\/api\/datasets\/([^/]+\/[^/]+)\/tree\/([^/]+)\/?(.*)$/.exec(u.pathname);
    if (tree !== null) {
      const repo = map.get(tree[1]!);
      if (repo === undefined) return notFound(res, "RepoNotFound");
      if (repo.token !== undefined && req.headers["authorization"] !== `Bearer ${repo.token}`) {
        return json(res, 401, { error: "Access to this dataset is restricted" });
      }
      const entries: unknown[] = [];
      const dirs = new Set<string>();
      for (const [path, bytes] of Object.entries(repo.files).sort()) {
        const parts = path.split("/");
        for (let i = 1; i < parts.length; i++) {
          const d = parts.slice(0, i).join("/");
          if (!dirs.has(d)) {
            dirs.add(d);
            entries.push({ type: "directory", oid: sha1(d), size: 0, path: d });
          }
        }
        const isLfs = path.endsWith(".parquet");
        entries.push({
          type: "file",
          oid: sha1(bytes),
          size: bytes.length,
          path,
          ...(isLfs ? { lfs: { oid: sha256(bytes), size: bytes.length, pointerSize: 132 } } : {}),
        });
      }
      const cursor = Number(u.searchParams.get("cursor") ?? "0");
      const page = entries.slice(cursor, cursor + PAGE);
      const headers: Record<string, string> = {};
      if (cursor + PAGE < entries.length) {
        const next = new URL(u.toString());
        next.searchParams.set("cursor", String(cursor + PAGE));
        headers["link"] = `<${next.toString()}>; rel="next"`;
      }
      return json(res, 200, page, headers);
    }
    const resolve = /^\/datasets\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(u.pathname);
    if (resolve !== null) {
      const repo = map.get(resolve[1]!);
      if (repo?.token !== undefined && req.headers["authorization"] !== `Bearer ${repo.token}`) {
        return json(res, 401, { error: "Access to this dataset is restricted" });
      }
      const bytes = repo?.files[decodeURIComponent(resolve[3]!)];
      if (bytes === undefined) return notFound(res, "EntryNotFound");
      const etag = `"${sha256(bytes)}"`;
      const range = req.headers["range"];
      if (range === "bytes=0-0") {
        res.writeHead(206, {
          "content-type": "application/octet-stream",
          "content-range": `bytes 0-0/${bytes.length}`,
          etag,
          "content-length": "1",
        });
        return res.end(Buffer.from(bytes.subarray(0, 1)));
      }
      res.writeHead(200, {
        "content-type": "application/octet-stream",
        etag,
        "content-length": String(bytes.length),
      });
      return res.end(Buffer.from(bytes));
    }
    if (u.pathname === "/parquet") {
      const name = u.searchParams.get("dataset") ?? "";
      const repo = map.get(name);
      const config = u.searchParams.get("config");
      const split = u.searchParams.get("split");
      if (repo?.converted === undefined) return json(res, 404, { error: "not converted" });
      const parquet_files = [];
      for (const [key, files] of Object.entries(repo.converted)) {
        const [c, s] = key.split("/");
        if ((config !== null && c !== config) || (split !== null && s !== split)) continue;
        for (const f of files) {
          parquet_files.push({
            dataset: name,
            config: c,
            split: s,
            url: `${base}/cdn/${name}/${key}/${f.filename}`,
            filename: f.filename,
            size: f.bytes.length,
          });
        }
      }
      return json(res, 200, { parquet_files, pending: [], failed: [], partial: false });
    }
    const cdn = /^\/cdn\/([^/]+\/[^/]+)\/([^/]+\/[^/]+)\/(.+)$/.exec(u.pathname);
    if (cdn !== null) {
      const f = map.get(cdn[1]!)?.converted?.[cdn[2]!]?.find((x) => x.filename === cdn[3]);
      if (f === undefined) return notFound(res, "EntryNotFound");
      res.writeHead(200, { "content-type": "application/octet-stream" });
      return res.end(Buffer.from(f.bytes));
    }
    notFound(res, "NoRoute");
  }

  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    log,
    repos: map,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function sha1(data: string | Uint8Array): string {
  return createHash("sha1").update(data).digest("hex");
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

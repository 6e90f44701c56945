import { open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  APIConnectionError,
  APIResponseValidationError,
  APIStatusError,
  TinkerValidationError,
} from "../client/errors.js";
import { tinkerCacheDir, writeFileAtomic, writeJsonAtomic } from "../fs/atomic.js";
import { envFlagOn, hfOfflineFromEnv } from "../hub/cache.js";
import {
  DatasetFormatError,
  DatasetNotFoundError,
  type OnBadRow,
  type SkippedRow,
} from "./errors.js";
import { expectObject, readJsonl } from "./jsonl.js";

/** Where and how to load a dataset of the Hugging Face hub. */
export interface HubDatasetOptions {
  /** Dataset repo id, e.g. `"openai/gsm8k"`. */
  repo: string;
  /** Dataset config (subset), e.g. `"main"`. Default: the repo's only / default config. */
  config?: string;
  /** Split name, e.g. `"train"`. */
  split: string;
  /** Branch, tag or commit. Default `"main"`. */
  revision?: string;
  /** Cache root. Default `<tinker-ts cache>/datasets` (see `TINKER_TS_CACHE_DIR`). */
  cacheDir?: string;
  /** Never touch the network; read only the cache. Default: `HF_HUB_OFFLINE`, `TRANSFORMERS_OFFLINE` or `HF_DATASETS_OFFLINE` set to 1/true/yes/on. */
  offline?: boolean;
  /** Hub base URL. Default `$HF_ENDPOINT` or `https://huggingface.co`. */
  hubUrl?: string;
  /** Datasets-server base URL (parquet conversions). Default `https://datasets-server.huggingface.co`. */
  datasetsServerUrl?: string;
  /** Token for gated/private datasets. Default `$HF_TOKEN`. */
  accessToken?: string;
  /** Custom fetch (proxy, headers). */
  fetch?: typeof fetch;
  /** For JSONL data files: default `"error"`. */
  onBadRow?: OnBadRow;
}

/** The rows of one split, and where they came from. */
export interface HubDataset {
  readonly repo: string;
  readonly config: string | undefined;
  readonly split: string;
  readonly revision: string;
  readonly rows: Record<string, unknown>[];
  /** Local paths of the cached data files, in row order. */
  readonly files: string[];
  /** `"repo"`: the repo's own data files; `"datasets-server"`: the hub's parquet conversion. */
  readonly source: "repo" | "datasets-server";
  /** True when nothing was downloaded (everything came from the cache). */
  readonly fromCache: boolean;
  readonly skipped: number;
  readonly skippedRows: SkippedRow[];
}

interface ManifestFile {
  /** Path in the repo (or file name in the parquet conversion). */
  path: string;
  /** Content id (git/LFS oid, or URL+size for the conversion); a change triggers a re-download. */
  oid: string;
  /** Path relative to the revision's cache directory. */
  local: string;
}

interface Manifest {
  version: 1;
  repo: string;
  config: string | null;
  split: string;
  revision: string;
  source: "repo" | "datasets-server";
  files: ManifestFile[];
}

const DATA_EXTENSIONS = [".parquet", ".jsonl", ".json"] as const;

function defaultHubUrl(): string {
  return (process.env["HF_ENDPOINT"] ?? "https://huggingface.co").replace(/\/+$/, "");
}

function envOffline(): boolean {
  return hfOfflineFromEnv() || envFlagOn(process.env["HF_DATASETS_OFFLINE"]);
}

function validate(opts: HubDatasetOptions): void {
  if (!/^[\w.-]+\/[\w.-]+$/.test(opts.repo) && !/^[\w.-]+$/.test(opts.repo)) {
    throw new TinkerValidationError(
      `repo must be a dataset id like "openai/gsm8k", got ${JSON.stringify(opts.repo)}`,
      "repo",
    );
  }
  if (!opts.split || /[/\\]/.test(opts.split)) {
    throw new TinkerValidationError(
      `split must be a split name like "train", got ${JSON.stringify(opts.split)}`,
      "split",
    );
  }
}

function revisionDir(cacheDir: string, repo: string, revision: string): string {
  return join(cacheDir, repo.replace("/", "___"), encodeURIComponent(revision));
}

function manifestPath(dir: string, config: string | undefined, split: string): string {
  return join(
    dir,
    ".manifests",
    `${encodeURIComponent(config ?? "_")}--${encodeURIComponent(split)}.json`,
  );
}

function describeTarget(opts: HubDatasetOptions, revision: string): string {
  return `"${opts.repo}"${opts.config ? ` config "${opts.config}"` : ""} split "${opts.split}" (revision ${revision})`;
}

/**
 * Load one split of a Hugging Face hub dataset as rows.
 *
 * Online, the repo's parquet / JSONL data files for the config and split are listed and downloaded
 * with `@huggingface/hub` (files under `<config>/` or `data/`, whose path names the split, e.g.
 * `main/train-00000-of-00001.parquet`); when the repo has none, the hub's parquet conversion is used
 * through the datasets-server `/parquet` endpoint. Files are cached under `cacheDir` and re-downloaded
 * only when their content id changes. Offline, only the cache is read, and a
 * {@link DatasetNotFoundError} says what is missing. If the network is unreachable and the split is
 * cached, the cache is used.
 */
export async function loadHubDataset(opts: HubDatasetOptions): Promise<HubDataset> {
  validate(opts);
  const revision = opts.revision ?? "main";
  const cacheDir = opts.cacheDir ?? join(tinkerCacheDir(), "datasets");
  const dir = revisionDir(cacheDir, opts.repo, revision);
  const mPath = manifestPath(dir, opts.config, opts.split);
  const offline = opts.offline ?? envOffline();

  let manifest: Manifest | null = await readManifest(mPath);
  let fromCache = true;
  if (offline) {
    if (manifest === null || !(await allPresent(dir, manifest))) {
      throw new DatasetNotFoundError(
        `offline mode: ${describeTarget(opts, revision)} is not in the cache at ${dir}. ` +
          `Load it once with network access (offline: false), point cacheDir at a cache that has it, ` +
          `or load the data from a local file instead.`,
        "offline",
      );
    }
  } else {
    try {
      const fresh = await syncToCache(opts, revision, dir, manifest);
      fromCache = !fresh.downloaded;
      manifest = fresh.manifest;
      await writeJsonAtomic(mPath, manifest);
    } catch (err) {
      if (
        err instanceof APIConnectionError &&
        manifest !== null &&
        (await allPresent(dir, manifest))
      ) {
        // Network down but the split is cached: use it.
      } else {
        throw err;
      }
    }
  }
  const m = manifest!;
  const files = m.files.map((f) => join(dir, f.local));
  const rows: Record<string, unknown>[] = [];
  const skippedRows: SkippedRow[] = [];
  let skipped = 0;
  for (const file of files) {
    const r = await readDataFile(file, opts.onBadRow ?? "error");
    for (const row of r.rows) rows.push(row);
    skipped += r.skipped;
    skippedRows.push(...r.skippedRows);
  }
  return {
    repo: opts.repo,
    config: opts.config,
    split: opts.split,
    revision,
    rows,
    files,
    source: m.source,
    fromCache,
    skipped,
    skippedRows,
  };
}

async function readManifest(path: string): Promise<Manifest | null> {
  try {
    const m = JSON.parse(await readFile(path, "utf8")) as Manifest;
    return m.version === 1 && Array.isArray(m.files) && m.files.length > 0 ? m : null;
  } catch {
    return null;
  }
}

async function allPresent(dir: string, m: Manifest): Promise<boolean> {
  for (const f of m.files) if (!(await exists(join(dir, f.local)))) return false;
  return true;
}

function splitMatches(path: string, split: string): boolean {
  const esc = split.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?:^|[/_.-])${esc}(?:[/_.-]|$)`, "i").test(path);
}

/** Pick the data files of `config`/`split` from a repo listing. */
export function selectDataFiles(
  paths: readonly string[],
  config: string | undefined,
  split: string,
): string[] {
  const data = paths.filter(
    (p) =>
      DATA_EXTENSIONS.some((e) => p.endsWith(e)) &&
      !/(^|\/)\./.test(p) &&
      !p.endsWith("dataset_infos.json") &&
      !p.endsWith("dataset_info.json"),
  );
  let scoped = data;
  if (config !== undefined && config !== "default") {
    scoped = data.filter((p) => p.startsWith(`${config}/`) || p.startsWith(`data/${config}/`));
  }
  return scoped
    .filter((p) => {
      const rel =
        config !== undefined && p.startsWith(`${config}/`) ? p.slice(config.length + 1) : p;
      return splitMatches(rel, split);
    })
    .sort();
}

async function hubCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw translateHubError(what, err);
  }
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_SOCKET",
]);

/** fetch() rejects with `TypeError("fetch failed")` whose `cause` carries the socket error code. */
function isNetworkFailure(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string }; message?: string } | null;
  if (e === null || typeof e !== "object") return false;
  if (NETWORK_CODES.has(e.code ?? "") || NETWORK_CODES.has(e.cause?.code ?? "")) return true;
  return err instanceof TypeError && /fetch failed|network/i.test(e.message ?? "");
}

/** `@huggingface/hub`'s HubApiError, recognised without importing the library eagerly. */
function isHubApiError(err: unknown): err is Error & { statusCode: number; url: string } {
  return (
    err instanceof Error &&
    typeof (err as { statusCode?: unknown }).statusCode === "number" &&
    typeof (err as { url?: unknown }).url === "string"
  );
}

function translateHubError(what: string, err: unknown): Error {
  if (isHubApiError(err)) {
    if (err.statusCode === 404) {
      return new DatasetNotFoundError(`${what}: not found on the hub (404 ${err.url})`, "repo");
    }
    if (err.statusCode === 401 || err.statusCode === 403) {
      return new APIStatusError(
        err.statusCode,
        `${what}: access denied (${err.statusCode}); gated or private datasets need accessToken / HF_TOKEN`,
        { request: `GET ${err.url}` },
      );
    }
    return new APIStatusError(err.statusCode, `${what}: ${err.message}`, {
      request: `GET ${err.url}`,
    });
  }
  if (isNetworkFailure(err)) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (err as Error).message;
    return new APIConnectionError(`${what}: cannot reach the hub (${detail})`, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}

async function syncToCache(
  opts: HubDatasetOptions,
  revision: string,
  dir: string,
  cached: Manifest | null,
): Promise<{ manifest: Manifest; downloaded: boolean }> {
  const hubUrl = (opts.hubUrl ?? defaultHubUrl()).replace(/\/+$/, "");
  const accessToken = opts.accessToken ?? process.env["HF_TOKEN"];
  const repo = { type: "dataset" as const, name: opts.repo };
  const common = {
    hubUrl,
    ...(accessToken ? { accessToken } : {}),
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  };
  const target = describeTarget(opts, revision);

  const listing = await hubCall(`listing the files of ${target}`, async () => {
    const out: { path: string; oid: string }[] = [];
    const { listFiles } = await import("@huggingface/hub");
    for await (const e of listFiles({ repo, revision, recursive: true, ...common })) {
      if (e.type === "file") out.push({ path: e.path, oid: e.lfs?.oid ?? e.oid ?? String(e.size) });
    }
    return out;
  });
  const oids = new Map(listing.map((f) => [f.path, f.oid]));
  const selected = selectDataFiles(
    listing.map((f) => f.path),
    opts.config,
    opts.split,
  );
  if (selected.length === 0) {
    return syncFromDatasetsServer(
      opts,
      dir,
      cached,
      listing.map((f) => f.path),
    );
  }
  const { files, downloaded } = await syncFiles(
    dir,
    cached,
    selected.map((path) => ({
      path,
      oid: oids.get(path)!,
      local: join("files", safeRelative(path)),
      download: async (dest) => {
        const what = `downloading ${path} of ${target}`;
        const blob = await hubCall(what, () =>
          import("@huggingface/hub").then((hub) =>
            hub.downloadFile({ repo, path, revision, ...common }),
          ),
        );
        if (blob === null) {
          throw new DatasetNotFoundError(`${target}: file ${path} vanished`, "split");
        }
        await hubCall(what, () =>
          writeFileAtomic(dest, blob.stream() as unknown as AsyncIterable<Uint8Array>),
        );
      },
    })),
  );
  return { manifest: manifestOf(opts, revision, "repo", files), downloaded };
}

interface ParquetListing {
  parquet_files?: {
    config?: string;
    split?: string;
    url?: string;
    filename?: string;
    size?: number;
  }[];
}

async function syncFromDatasetsServer(
  opts: HubDatasetOptions,
  dir: string,
  cached: Manifest | null,
  repoPaths: readonly string[],
): Promise<{ manifest: Manifest; downloaded: boolean }> {
  const base = (opts.datasetsServerUrl ?? "https://datasets-server.huggingface.co").replace(
    /\/+$/,
    "",
  );
  const doFetch = opts.fetch ?? fetch;
  const accessToken = opts.accessToken ?? process.env["HF_TOKEN"];
  const headers: Record<string, string> = accessToken
    ? { Authorization: `Bearer ${accessToken}` }
    : {};
  const target = describeTarget(opts, opts.revision ?? "main");
  const params = new URLSearchParams({ dataset: opts.repo });
  if (opts.config) params.set("config", opts.config);
  params.set("split", opts.split);
  const url = `${base}/parquet?${params}`;
  const res = await hubCall(`asking the datasets-server for ${target}`, () =>
    doFetch(url, { headers }),
  );
  if (!res.ok) {
    if (res.status === 404) {
      const configs = [
        ...new Set(repoPaths.filter((p) => p.includes("/")).map((p) => p.split("/")[0]!)),
      ];
      throw new DatasetNotFoundError(
        `${target}: the repo has no parquet/JSONL files for this config and split` +
          (configs.length > 0 ? ` (top-level folders: ${configs.join(", ")})` : "") +
          `, and the datasets-server has no parquet conversion (404 ${url})`,
        "split",
      );
    }
    throw APIStatusError.fromResponse(res.status, await res.text().catch(() => ""), {
      request: `GET ${url}`,
    });
  }
  let body: ParquetListing;
  try {
    body = (await res.json()) as ParquetListing;
  } catch (err) {
    throw new APIResponseValidationError(
      `${target}: the datasets-server answered with invalid JSON; check datasetsServerUrl`,
      { request: `GET ${url}`, cause: err },
    );
  }
  const entries = (body.parquet_files ?? []).filter(
    (f) =>
      f.url !== undefined &&
      f.split === opts.split &&
      (opts.config === undefined || f.config === opts.config),
  );
  if (entries.length === 0) {
    throw new DatasetNotFoundError(
      `${target}: the datasets-server lists no parquet files for it`,
      "split",
    );
  }
  const { files, downloaded } = await syncFiles(
    dir,
    cached,
    entries.map((e) => {
      const name = e.filename ?? e.url!.split("/").pop()!;
      const path = `${e.config ?? "default"}/${e.split}/${name}`;
      return {
        path,
        oid: `${e.url}#${e.size ?? ""}`,
        local: join("parquet", safeRelative(path)),
        download: async (dest: string) => {
          const file = await hubCall(`downloading ${name} of ${target}`, async () => {
            const r = await doFetch(e.url!, { headers });
            if (!r.ok) {
              throw APIStatusError.fromResponse(r.status, await r.text(), {
                request: `GET ${e.url}`,
              });
            }
            return new Uint8Array(await r.arrayBuffer());
          });
          await writeFileAtomic(dest, file);
        },
      };
    }),
  );
  files.sort((a, b) => a.path.localeCompare(b.path));
  return {
    manifest: manifestOf(opts, opts.revision ?? "main", "datasets-server", files),
    downloaded,
  };
}

/** A data file the split needs: its content id, its place in the cache, and how to fetch it. */
interface WantedFile {
  path: string;
  oid: string;
  local: string;
  download(dest: string): Promise<void>;
}

/** Keep the cached files whose content id is unchanged and download the others, in order. */
async function syncFiles(
  dir: string,
  cached: Manifest | null,
  wanted: readonly WantedFile[],
): Promise<{ files: ManifestFile[]; downloaded: boolean }> {
  const previous = new Map((cached?.files ?? []).map((f) => [f.path, f]));
  const files: ManifestFile[] = [];
  let downloaded = false;
  for (const w of wanted) {
    const prev = previous.get(w.path);
    if (prev?.oid === w.oid && (await exists(join(dir, w.local)))) {
      files.push(prev);
      continue;
    }
    await w.download(join(dir, w.local));
    downloaded = true;
    files.push({ path: w.path, oid: w.oid, local: w.local });
  }
  return { files, downloaded };
}

function manifestOf(
  opts: HubDatasetOptions,
  revision: string,
  source: Manifest["source"],
  files: ManifestFile[],
): Manifest {
  return {
    version: 1,
    repo: opts.repo,
    config: opts.config ?? null,
    split: opts.split,
    revision,
    source,
    files,
  };
}

/** A server-given path, refused if it could escape the cache directory. */
function safeRelative(path: string): string {
  const parts = path.split(/[/\\]/);
  if (
    path.startsWith("/") ||
    /^[A-Za-z]:/.test(path) ||
    parts.some((p) => p === ".." || p === "")
  ) {
    throw new DatasetFormatError(path, 0, "refusing a data file path outside the dataset folder");
  }
  return path;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** JSON-friendly values: safe 64-bit integers become numbers. */
function plain(value: unknown): unknown {
  if (typeof value === "bigint") {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value;
  }
  return value;
}

async function firstNonSpaceChar(file: string): Promise<string> {
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(256);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf
      .toString("utf8", 0, bytesRead)
      .replace(/^\uFEFF/, "")
      .trimStart()
      .slice(0, 1);
  } finally {
    await fh.close();
  }
}

/** Rows of a cached data file (parquet, JSONL, or a JSON array). */
async function readDataFile(
  file: string,
  onBadRow: OnBadRow,
): Promise<{ rows: Record<string, unknown>[]; skipped: number; skippedRows: SkippedRow[] }> {
  if (file.endsWith(".parquet")) {
    let objects: Record<string, unknown>[];
    try {
      // Loaded on first use: most programs never read parquet.
      const { asyncBufferFromFile, parquetReadObjects } = await import("hyparquet");
      objects = (await parquetReadObjects({ file: await asyncBufferFromFile(file) })) as Record<
        string,
        unknown
      >[];
    } catch (err) {
      throw new DatasetFormatError(
        file,
        0,
        `not a readable parquet file (${(err as Error).message}); delete it to download it again`,
        { cause: err },
      );
    }
    return {
      rows: objects.map((o) =>
        Object.fromEntries(Object.entries(o).map(([k, v]) => [k, plain(v)])),
      ),
      skipped: 0,
      skippedRows: [],
    };
  }
  if (file.endsWith(".json") && (await firstNonSpaceChar(file)) === "[") {
    return readJsonArrayFile(file, onBadRow);
  }
  return readJsonl<Record<string, unknown>>(file, { onBadRow, parse: expectObject });
}

/** Rows of a JSON file holding one array of row objects; elements are numbered from 0 in messages. */
async function readJsonArrayFile(
  file: string,
  onBadRow: OnBadRow,
): Promise<{ rows: Record<string, unknown>[]; skipped: number; skippedRows: SkippedRow[] }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, "utf8"));
  } catch (err) {
    throw new DatasetFormatError(file, 0, `invalid JSON (${(err as Error).message})`, {
      cause: err,
    });
  }
  if (!Array.isArray(parsed))
    throw new DatasetFormatError(file, 0, "expected a JSON array of rows");
  const rows: Record<string, unknown>[] = [];
  const skippedRows: SkippedRow[] = [];
  parsed.forEach((value: unknown, i) => {
    try {
      rows.push(expectObject(value));
    } catch (err) {
      const reason = `element ${i}: ${(err as Error).message}`;
      if (onBadRow === "error") throw new DatasetFormatError(file, 0, reason);
      skippedRows.push({ file, line: 0, reason });
    }
  });
  return { rows, skipped: skippedRows.length, skippedRows };
}

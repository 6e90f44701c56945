import { readdir, stat } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { TinkerError, TinkerValidationError } from "../../../client/errors.js";
import { writeFileAtomic } from "../../../fs/atomic.js";
import {
  expandHome,
  findCachedSnapshot,
  hfCacheRefPath,
  hfCacheRepoFolder,
  hfHubCacheDir,
  hfOfflineFromEnv,
} from "../../../hub/cache.js";
import { ModelFileError } from "./errors.js";
import { readSafetensorsIndex } from "./safetensors.js";

/** What part of a model repo is needed: everything to run it, or only the tokenizer files. */
export type ModelFiles = "model" | "tokenizer";

/** Options of {@link resolveModelFolder}. */
export interface ResolveModelOptions {
  /** Hugging Face hub cache (the folder holding `models--org--name`). Default: see `hfHubCacheDir`. */
  cacheDir?: string;
  /** Never use the network. Default: `HF_HUB_OFFLINE` is 1/true/yes/on. */
  offline?: boolean;
  /** Branch, tag or 40-hex commit. Default "main". */
  revision?: string;
  /** Which files must be present. Default "model". */
  files?: ModelFiles;
  /** Hub endpoint. Default `$HF_ENDPOINT` or https://huggingface.co. */
  hubUrl?: string;
  /** Access token (`hf_...`) for gated/private repos. Default `$HF_TOKEN`. */
  accessToken?: string;
  /** Fetch implementation for the hub client (proxies, tests). */
  fetch?: typeof fetch;
}

/**
 * The requested model could not be found locally and could not (or may not) be downloaded.
 * A validation error on `base_model`: the message says how to make the model available.
 */
export class ModelNotAvailableError extends TinkerValidationError {
  override name = "ModelNotAvailableError";
  readonly model: string;
  constructor(model: string, message: string, opts: { cause?: unknown } = {}) {
    super(message, "base_model");
    this.model = model;
    if (opts.cause !== undefined) this.cause = opts.cause;
  }
}

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
const COMMIT = /^[0-9a-f]{40}$/;

const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
  "chat_template.json",
];
const CONFIG_FILES = ["config.json", "generation_config.json"];

/**
 * The files of a repo listing to download for `files`: config and tokenizer files, and for a model
 * the safetensors index (shards are chosen from it after it is downloaded) or `model.safetensors`.
 * Other weights (`*.bin`, `original/`, `consolidated.safetensors`, GGUF, ONNX) are never fetched.
 */
export function selectRepoFiles(listing: readonly string[], files: ModelFiles): string[] {
  const out = listing.filter((p) => TOKENIZER_FILES.includes(p) || CONFIG_FILES.includes(p));
  if (files === "model") {
    if (listing.includes("model.safetensors.index.json")) out.push("model.safetensors.index.json");
    else if (listing.includes("model.safetensors")) out.push("model.safetensors");
  }
  return out;
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

async function isDir(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** Names of files missing from `dir` for it to be usable as `files`; empty when complete. */
export async function missingModelFiles(dir: string, files: ModelFiles): Promise<string[]> {
  const missing: string[] = [];
  const required =
    files === "model"
      ? ["config.json", "tokenizer.json"]
      : ["tokenizer.json", "tokenizer_config.json"];
  for (const f of required) if (!(await isFile(join(dir, f)))) missing.push(f);
  if (files === "model") {
    const index = join(dir, "model.safetensors.index.json");
    if (await isFile(index)) {
      try {
        const { weightMap } = await readSafetensorsIndex(index);
        for (const shard of new Set(weightMap.values()))
          if (!(await isFile(join(dir, shard)))) missing.push(shard);
      } catch {
        missing.push("model.safetensors.index.json (unreadable)");
      }
    } else if (!(await isFile(join(dir, "model.safetensors")))) {
      missing.push("model.safetensors");
    }
  }
  return missing;
}

function looksLikePath(s: string): boolean {
  return (
    isAbsolute(s) ||
    s.startsWith("./") ||
    s.startsWith("../") ||
    s.startsWith("~/") ||
    s === "." ||
    s === ".."
  );
}

/**
 * Find a model folder: a local path (returned as is when it exists), else a Hugging Face repo id
 * (`org/name`) looked up in the hub cache (`models--org--name/snapshots/<commit>`, with branch
 * names resolved through `refs/<branch>`), else downloaded into that cache with @huggingface/hub
 * (config, tokenizer and safetensors files only). A complete cached snapshot is used without
 * contacting the hub (pin `revision` to a commit, or clear the cache, to pick up a newer one). In
 * offline mode the network is never used and a missing model raises {@link ModelNotAvailableError}
 * explaining how to get it.
 */
export async function resolveModelFolder(
  nameOrPath: string,
  opts: ResolveModelOptions = {},
): Promise<string> {
  const files = opts.files ?? "model";
  const asPath = resolve(expandHome(nameOrPath));
  if (looksLikePath(nameOrPath) || (await isDir(asPath))) {
    if (!(await isDir(asPath))) throw new ModelFileError(asPath, "model folder not found");
    return asPath;
  }
  if (!REPO_ID.test(nameOrPath)) {
    throw new ModelNotAvailableError(
      nameOrPath,
      `"${nameOrPath}" is neither an existing folder nor a Hugging Face repo id of the form "org/name"`,
    );
  }
  const cacheDir = opts.cacheDir ?? hfHubCacheDir();
  const revision = opts.revision ?? "main";
  if (
    !/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(revision) ||
    revision.split("/").includes("..")
  ) {
    throw new TinkerValidationError(
      `revision ${JSON.stringify(revision)} is not a valid branch, tag or commit`,
      "revision",
    );
  }
  const cached = findCachedSnapshot(nameOrPath, revision, cacheDir);
  const missing = cached ? await missingModelFiles(cached, files) : ["(not cached)"];
  if (cached && missing.length === 0) return cached;

  const offline = opts.offline ?? hfOfflineFromEnv();
  if (offline) {
    const where = join(cacheDir, hfCacheRepoFolder(nameOrPath));
    const what = cached
      ? `the cached snapshot ${cached} lacks ${missing.join(", ")}`
      : `it is not in the Hugging Face cache (${where})`;
    throw new ModelNotAvailableError(
      nameOrPath,
      `${nameOrPath}: ${what}, and offline mode is on (HF_HUB_OFFLINE or offline: true), so nothing is downloaded. ` +
        `To get it: run once with network access and offline mode off, or download it elsewhere with ` +
        `\`huggingface-cli download ${nameOrPath}\` and copy the cache (set HF_HOME or HF_HUB_CACHE), ` +
        `or pass the path of a local folder holding config.json, tokenizer.json and *.safetensors.`,
    );
  }
  return downloadModel(nameOrPath, revision, files, cacheDir, opts);
}

async function downloadModel(
  repoId: string,
  revision: string,
  files: ModelFiles,
  cacheDir: string,
  opts: ResolveModelOptions,
): Promise<string> {
  const hubUrl = opts.hubUrl ?? process.env.HF_ENDPOINT ?? undefined;
  const accessToken =
    opts.accessToken ?? process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN ?? undefined;
  const common = {
    ...(hubUrl ? { hubUrl } : {}),
    ...(accessToken ? { accessToken } : {}),
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  };
  const where = hubUrl ?? "https://huggingface.co";
  try {
    // Loaded on demand: the hub client is only needed when something must be downloaded.
    const { downloadFileToCacheDir, listFiles, modelInfo } = await import("@huggingface/hub");
    const info = await modelInfo({ name: repoId, revision, additionalFields: ["sha"], ...common });
    const commit = (info as { sha?: string }).sha;
    if (!commit || !COMMIT.test(commit))
      throw new Error(`the hub returned no commit sha for ${repoId}@${revision}`);
    const listing: string[] = [];
    for await (const entry of listFiles({
      repo: repoId,
      revision: commit,
      recursive: false,
      ...common,
    })) {
      if (entry.type === "file") listing.push(entry.path);
    }
    const fetchFile = (path: string) =>
      downloadFileToCacheDir({ repo: repoId, path, revision: commit, cacheDir, ...common });
    for (const path of selectRepoFiles(listing, files)) {
      const local = await fetchFile(path);
      if (path === "model.safetensors.index.json") {
        const { weightMap } = await readSafetensorsIndex(local);
        for (const shard of [...new Set(weightMap.values())].sort()) {
          if (!listing.includes(shard)) {
            throw new ModelFileError(local, `names shard "${shard}", which the repo does not have`);
          }
          await fetchFile(shard);
        }
      }
    }
    if (revision !== commit) {
      await writeFileAtomic(hfCacheRefPath(cacheDir, repoId, revision), commit);
    }
    const snap = join(cacheDir, hfCacheRepoFolder(repoId), "snapshots", commit);
    const missing = await missingModelFiles(snap, files);
    if (missing.length > 0) {
      const listing = (await readdir(snap).catch(() => [])).join(", ") || "nothing";
      throw new ModelFileError(
        snap,
        `${repoId}@${revision} lacks ${missing.join(", ")} (downloaded: ${listing}); only safetensors checkpoints with tokenizer.json are supported`,
      );
    }
    return snap;
  } catch (err) {
    if (err instanceof TinkerError) throw err;
    throw new ModelNotAvailableError(
      repoId,
      `${repoId}: not in the cache (${cacheDir}) and downloading from ${where} failed: ${(err as Error).message}. ` +
        `Check the repo id and network access (gated repos need HF_TOKEN), or pass a local folder path.`,
      { cause: err },
    );
  }
}

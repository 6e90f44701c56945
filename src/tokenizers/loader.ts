import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { downloadFileToCacheDir } from "@huggingface/hub";
import { TinkerError, TinkerValidationError } from "../client/errors.js";
import {
  expandHome,
  findCachedSnapshot,
  hfCacheRefPath,
  hfHubCacheDir,
  hfOfflineFromEnv,
} from "../hub/cache.js";
import { HfTokenizer } from "./hf-tokenizer.js";
import { isLocalPath, PRESET_TOKENIZER_NAMES, resolveTokenizerId } from "./names.js";
import type { Tokenizer } from "./types.js";

/** Builds a tokenizer for a (resolved) id; may be async. */
export type TokenizerFactory = (id: string) => Tokenizer | Promise<Tokenizer>;

/** Options of {@link loadTokenizer}. */
export interface LoadTokenizerOptions {
  /**
   * Never touch the network: read only a local folder or the HF cache. Defaults to `true` when
   * `HF_HUB_OFFLINE` is `1`/`true`, else `false`.
   */
  offline?: boolean;
  /** Hub revision (branch, tag or commit). Default `"main"`. */
  revision?: string;
  /** HF hub cache directory. Default: see `hfHubCacheDir`. */
  cacheDir?: string;
  /** Hub access token. Default `HF_TOKEN`. */
  accessToken?: string;
  /** Hub base URL. Default `HF_ENDPOINT`, else `https://huggingface.co`. */
  hubUrl?: string;
  /** Skip the id mapping (`:suffix`, Llama-3 mirror, three-part names). Default `false`. */
  rawId?: boolean;
  /** Custom `fetch` for hub requests (proxies, tests). */
  fetch?: typeof fetch;
}

/** Raised when a tokenizer cannot be found or read. */
export class TokenizerLoadError extends TinkerError {
  override name = "TokenizerLoadError";
  readonly tokenizerId: string;
  constructor(message: string, tokenizerId: string, options?: { cause?: unknown }) {
    super(message, options);
    this.tokenizerId = tokenizerId;
  }
}

const REQUIRED_FILE = "tokenizer.json";
const CONFIG_FILE = "tokenizer_config.json";

const registry = new Map<string, TokenizerFactory>();

/**
 * Tokenizers of the local engine's presets, known by their model name: the same folders the
 * server uses, found without the network (tiny-bytes is generated; tiny-qwen3's Qwen3 tokenizer
 * ships in the package). The registry takes precedence, so users can override them.
 */
const presetTokenizer: TokenizerFactory = async (id) => {
  const { getPreset } = await import("../local/engine/io/presets.js");
  return loadTokenizerFromDir(await getPreset(id).tokenizerDir(), id);
};
const builtins: ReadonlyMap<string, TokenizerFactory> = new Map(
  PRESET_TOKENIZER_NAMES.map((name) => [name, presetTokenizer]),
);
/** Loaded tokenizers by `id` (a direct registry hit) or `resolvedId@revision`. */
const cache = new Map<string, Promise<Tokenizer>>();

/** Drop the cached copies loaded under `id`, whether directly or as a mapped name. */
function forgetCached(id: string): void {
  for (const key of cache.keys()) if (key === id || key.startsWith(`${id}@`)) cache.delete(key);
}

/**
 * Register a custom tokenizer. `loadTokenizer(id)` checks the registry first, with the id as
 * given and after the name mapping. Replaces an existing registration and drops its cached copy.
 */
export function registerTokenizer(id: string, factory: TokenizerFactory): void {
  if (id.length === 0) throw new TinkerValidationError("tokenizer id must be non-empty", "id");
  registry.set(id, factory);
  forgetCached(id);
}

/** Remove a custom tokenizer; returns whether it was registered. */
export function unregisterTokenizer(id: string): boolean {
  forgetCached(id);
  return registry.delete(id);
}

/** Whether a custom tokenizer is registered under exactly `id`. */
export function isTokenizerRegistered(id: string): boolean {
  return registry.has(id);
}

/** The ids of the custom tokenizers, in registration order. */
export function getRegisteredTokenizerNames(): string[] {
  return [...registry.keys()];
}

/** Drop every cached tokenizer (registered factories stay). */
export function clearTokenizerCache(): void {
  cache.clear();
}

/** Read a tokenizer from a folder holding `tokenizer.json` and (optionally) `tokenizer_config.json`. */
export function loadTokenizerFromDir(dir: string, name: string = dir): HfTokenizer {
  const jsonPath = join(dir, REQUIRED_FILE);
  if (!existsSync(jsonPath)) {
    throw new TokenizerLoadError(
      `tokenizer "${name}": ${jsonPath} does not exist; the folder must contain tokenizer.json (and tokenizer_config.json for special tokens and the chat template)`,
      name,
    );
  }
  const configPath = join(dir, CONFIG_FILE);
  try {
    const json: unknown = JSON.parse(readFileSync(jsonPath, "utf8"));
    const config: unknown = existsSync(configPath)
      ? JSON.parse(readFileSync(configPath, "utf8"))
      : {};
    return new HfTokenizer(json, config, name);
  } catch (err) {
    if (err instanceof TinkerError) throw err;
    throw new TokenizerLoadError(
      `tokenizer "${name}": could not read ${dir}: ${String(err)}`,
      name,
      { cause: err },
    );
  }
}

async function loadFromHub(repo: string, opts: LoadTokenizerOptions): Promise<Tokenizer> {
  const revision = opts.revision ?? "main";
  const cacheDir = opts.cacheDir ?? hfHubCacheDir();
  const offline = opts.offline ?? hfOfflineFromEnv();
  const cached = findCachedSnapshot(repo, revision, cacheDir, REQUIRED_FILE);
  if (cached !== undefined) return loadTokenizerFromDir(cached, repo);
  if (offline) {
    throw new TokenizerLoadError(
      `tokenizer "${repo}" (revision ${revision}) is not in the HF cache at ${cacheDir} and offline mode is on ` +
        "(offline option or HF_HUB_OFFLINE=1). Download it once while online (loadTokenizer without offline, or " +
        "`huggingface-cli download " +
        repo +
        " tokenizer.json tokenizer_config.json`), pass a local folder holding tokenizer.json, or registerTokenizer() a custom loader.",
      repo,
    );
  }
  const common = {
    repo: { type: "model" as const, name: repo },
    revision,
    cacheDir,
    hubUrl: opts.hubUrl ?? process.env.HF_ENDPOINT,
    accessToken: opts.accessToken ?? process.env.HF_TOKEN,
    ...(opts.fetch !== undefined ? { fetch: opts.fetch } : {}),
  };
  let jsonPath: string;
  try {
    jsonPath = await downloadFileToCacheDir({ ...common, path: REQUIRED_FILE });
  } catch (err) {
    throw new TokenizerLoadError(
      `tokenizer "${repo}": could not download ${REQUIRED_FILE} from the hub (${String(err)}). ` +
        "Check the id and your network, set HF_TOKEN for gated repos, or pass a local folder.",
      repo,
      { cause: err },
    );
  }
  try {
    await downloadFileToCacheDir({ ...common, path: CONFIG_FILE });
  } catch {
    // Some repos have no tokenizer_config.json: special tokens then come from tokenizer.json only.
  }
  const snapshot = resolve(jsonPath, "..");
  recordRef(cacheDir, repo, revision, snapshot);
  return loadTokenizerFromDir(snapshot, repo);
}

/**
 * Point `refs/<revision>` at the downloaded snapshot, as the Python hub client does, so an
 * offline run later finds it by branch name. `@huggingface/hub` writes blobs and snapshots only.
 */
function recordRef(cacheDir: string, repo: string, revision: string, snapshot: string): void {
  const commit = basename(snapshot);
  if (commit === revision) return;
  const ref = hfCacheRefPath(cacheDir, repo, revision);
  try {
    mkdirSync(dirname(ref), { recursive: true });
    writeFileSync(ref, commit);
  } catch {
    // A read-only cache still works online; offline lookups then need the commit as revision.
  }
}

/**
 * Load the tokenizer of a model or tokenizer id, caching it in memory by id.
 *
 * Order: the custom registry (id as given, then mapped); a local folder; the HF cache; the hub
 * (unless offline). Model names go through {@link resolveTokenizerId} first.
 */
export function loadTokenizer(id: string, options: LoadTokenizerOptions = {}): Promise<Tokenizer> {
  if (typeof id !== "string" || id.length === 0) {
    return Promise.reject(
      new TinkerValidationError(
        'tokenizer id must be a non-empty string, e.g. "Qwen/Qwen3-8B"',
        "id",
      ),
    );
  }
  const direct = registry.get(id);
  const resolved = options.rawId ? id : resolveTokenizerId(id);
  const factory = direct ?? registry.get(resolved) ?? builtins.get(resolved);
  const key = direct !== undefined ? id : `${resolved}@${options.revision ?? "main"}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const pending = (async (): Promise<Tokenizer> => {
    if (factory !== undefined) return factory(direct !== undefined ? id : resolved);
    const local = expandHome(resolved);
    if (isLocalPath(resolved) || (existsSync(local) && statSync(local).isDirectory())) {
      return loadTokenizerFromDir(resolve(local), resolved);
    }
    return loadFromHub(resolved, options);
  })();
  cache.set(key, pending);
  // A failed load is not cached, so a later call (e.g. after going online) can retry.
  // Only this load's entry: the cache may have been cleared and refilled meanwhile.
  pending.catch(() => {
    if (cache.get(key) === pending) cache.delete(key);
  });
  return pending;
}

import { existsSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/**
 * The Hugging Face hub cache on disk, laid out as the Python `huggingface_hub` client lays it out
 * (`models--org--name/{refs,snapshots,blobs}`), so models and tokenizers downloaded by either are
 * found by both.
 */

/**
 * The hub cache directory, resolved the way `huggingface_hub` does: `$HF_HUB_CACHE`,
 * `$HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`,
 * `~/.cache/huggingface/hub`.
 */
export function hfHubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  if (env.HF_HOME) return join(env.HF_HOME, "hub");
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "huggingface", "hub");
}

/** An environment flag as the hub client reads one: `1`, `true`, `yes` or `on`, any case. */
export function envFlagOn(value: string | undefined): boolean {
  return ["1", "true", "yes", "on"].includes((value ?? "").toLowerCase());
}

/** True when `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) asks for offline mode. */
export function hfOfflineFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return envFlagOn(env.HF_HUB_OFFLINE) || envFlagOn(env.TRANSFORMERS_OFFLINE);
}

/** `models--org--name`, the cache folder of a model repo. */
export function hfCacheRepoFolder(repoId: string): string {
  return `models--${repoId.split("/").join("--")}`;
}

/** Where the cache records the commit a branch or tag name pointed to when it was downloaded. */
export function hfCacheRefPath(cacheDir: string, repoId: string, revision: string): string {
  return join(cacheDir, hfCacheRepoFolder(repoId), "refs", revision);
}

/**
 * The snapshot folder of `repoId` at `revision` (a branch or tag recorded under `refs/`, or a commit
 * hash), or undefined when it is not cached, or lacks `requiredFile` when one is named.
 */
export function findCachedSnapshot(
  repoId: string,
  revision: string,
  cacheDir: string,
  requiredFile?: string,
): string | undefined {
  const refPath = hfCacheRefPath(cacheDir, repoId, revision);
  const commit = existsSync(refPath) ? readFileSync(refPath, "utf8").trim() : revision;
  const snapshot = join(cacheDir, hfCacheRepoFolder(repoId), "snapshots", commit);
  if (requiredFile !== undefined)
    return existsSync(join(snapshot, requiredFile)) ? snapshot : undefined;
  return isDir(snapshot) ? snapshot : undefined;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** `~/x` -> `<home>/x`; other paths unchanged. */
export function expandHome(p: string): string {
  return p === "~" || p.startsWith("~/") ? join(homedir(), p.slice(1)) : p;
}

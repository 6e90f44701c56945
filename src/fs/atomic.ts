import { randomBytes } from "node:crypto";
import { type Dirent, constants as fsConstants } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";

const MAX_WRITE_BYTES = 1 << 28;

/** Bytes accepted by {@link writeFileAtomic}: a whole buffer/string, or chunks produced lazily. */
export type AtomicFileData = string | Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * The cache directory of tinker-ts: `$TINKER_TS_CACHE_DIR`, else `$XDG_CACHE_HOME/tinker-ts`, else
 * `~/.cache/tinker-ts`. Not created here.
 */
export function tinkerCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.TINKER_TS_CACHE_DIR;
  if (explicit) return explicit;
  const xdg = env.XDG_CACHE_HOME;
  if (xdg) return join(xdg, "tinker-ts");
  return join(homedir(), ".cache", "tinker-ts");
}

/** A unique hidden sibling path of `path` (same directory, so a rename onto `path` is atomic). */
export function tempSiblingPath(path: string, tag = "tmp"): string {
  return join(
    dirname(path),
    `.${basename(path)}.${tag}-${process.pid}-${randomBytes(6).toString("hex")}`,
  );
}

/**
 * Write `data` to `path` so that readers (and a crash at any point) see either the old file or the
 * complete new one: write a temp sibling, fsync it, rename it over `path`, fsync the directory.
 * On failure the temp file is removed and the previous content of `path` is untouched.
 * Parent directories are created.
 */
export async function writeFileAtomic(
  path: string,
  data: AtomicFileData,
  opts: { mode?: number } = {},
): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = tempSiblingPath(path);
  const handle = await open(tmp, "wx", opts.mode ?? 0o644);
  let closed = false;
  try {
    if (typeof data === "string") {
      await handle.writeFile(data);
    } else {
      const chunks = data instanceof Uint8Array ? [data] : (data as AsyncIterable<Uint8Array>);
      for await (const chunk of chunks) {
        let off = 0;
        while (off < chunk.byteLength) {
          // Bounded writes: Node rejects single writes over 2 GiB.
          const len = Math.min(chunk.byteLength - off, MAX_WRITE_BYTES);
          const { bytesWritten } = await handle.write(chunk, off, len);
          off += bytesWritten;
        }
      }
    }
    await handle.sync();
    await handle.close();
    closed = true;
    await rename(tmp, path);
  } catch (err) {
    if (!closed) await handle.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}

/** {@link writeFileAtomic} of `JSON.stringify(value, null, indent)` plus a trailing newline. */
export async function writeJsonAtomic(
  path: string,
  value: unknown,
  opts: { indent?: number } = {},
): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, opts.indent ?? 2)}\n`);
}

/**
 * Flush a directory entry table to disk (makes renames/creates inside it durable). Best effort on
 * platforms that cannot open directories for fsync.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, fsConstants.O_RDONLY);
    await handle.sync();
  } catch (err) {
    // EISDIR/EPERM/EINVAL: this platform does not fsync directories; nothing more we can do.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EISDIR" && code !== "EPERM" && code !== "EINVAL" && code !== "EBADF") throw err;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** fsync every regular file under `dir` (recursively) and every directory, children first. */
export async function fsyncTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) {
      await fsyncTree(p);
    } else if (entry.isFile()) {
      const h = await open(p, fsConstants.O_RDONLY);
      try {
        await h.sync();
      } finally {
        await h.close();
      }
    }
  }
  await fsyncDir(dir);
}

/** The entries of `dir`, or none when it does not exist. */
export function readdirIfExists(dir: string): Promise<string[]>;
export function readdirIfExists(dir: string, opts: { withFileTypes: true }): Promise<Dirent[]>;
export async function readdirIfExists(
  dir: string,
  opts?: { withFileTypes: true },
): Promise<string[] | Dirent[]> {
  try {
    return opts ? await readdir(dir, opts) : await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

const BACKUP_TAG = "replaced";
const LEFTOVER = /^\.(.+)\.(tmp|replaced)-\d+-[0-9a-f]{12}$/;

/**
 * True for the hidden names this module gives temp files/dirs and moved-aside backups
 * (`.<name>.tmp-<pid>-<hex>`, `.<name>.replaced-<pid>-<hex>`); directory listings should skip them.
 */
export function isAtomicTempName(name: string): boolean {
  return LEFTOVER.test(name);
}

/**
 * Clean up after crashes inside `parent`: restore every directory that {@link replaceDirAtomic}
 * had moved aside when the crash hit (its final name missing), drop backups whose final name
 * exists, and delete temp files/dirs of crashed writers older than `staleMs` (default one hour, so
 * writers still running in other processes are left alone). Returns the names restored. Call it
 * on startup before listing `parent`.
 */
export async function recoverAtomicDirsIn(
  parent: string,
  opts: { staleMs?: number } = {},
): Promise<string[]> {
  const names = await readdirIfExists(parent);
  const restored: string[] = [];
  const finals = new Set<string>();
  const staleBefore = Date.now() - (opts.staleMs ?? 3_600_000);
  for (const n of names) {
    const m = LEFTOVER.exec(n);
    if (!m) continue;
    if (m[2] === BACKUP_TAG) finals.add(m[1] as string);
    else {
      const p = join(parent, n);
      const st = await stat(p).catch(() => undefined);
      if (st && st.mtimeMs < staleBefore) await rm(p, { recursive: true, force: true });
    }
  }
  for (const f of finals) {
    if (await recoverAtomicDir(join(parent, f))) restored.push(f);
  }
  return restored;
}

/**
 * Repair the state a crash inside {@link replaceDirAtomic} can leave: if `finalDir` is missing but
 * a complete previous version was moved aside, move it back. Stale backups next to an existing
 * `finalDir` are removed. Returns true when something was restored.
 */
export async function recoverAtomicDir(finalDir: string): Promise<boolean> {
  const parent = dirname(finalDir);
  const prefix = `.${basename(finalDir)}.${BACKUP_TAG}-`;
  const backups = (await readdirIfExists(parent)).filter((n) => n.startsWith(prefix));
  if (backups.length === 0) return false;
  let restored = false;
  if (!(await exists(finalDir))) {
    const first = backups.shift();
    if (first !== undefined) {
      await rename(join(parent, first), finalDir);
      await fsyncDir(parent);
      restored = true;
    }
  }
  for (const b of backups) await rm(join(parent, b), { recursive: true, force: true });
  return restored;
}

/**
 * Move a fully written directory `tmpDir` into place at `finalDir`. Everything inside `tmpDir` is
 * fsynced first, so after a crash `finalDir` is either absent, the previous version, or the new one,
 * never half written. `tmpDir` must be on the same filesystem (use {@link tempSiblingPath}).
 *
 * When `finalDir` already exists it is moved aside, the new one renamed in, then the old one
 * deleted; a crash between those two renames is repaired by {@link recoverAtomicDir} (also run
 * here first).
 */
export async function replaceDirAtomic(tmpDir: string, finalDir: string): Promise<void> {
  await fsyncTree(tmpDir);
  const parent = dirname(finalDir);
  await mkdir(parent, { recursive: true });
  await recoverAtomicDir(finalDir);
  if (await exists(finalDir)) {
    const backup = tempSiblingPath(finalDir, BACKUP_TAG);
    await rename(finalDir, backup);
    try {
      await rename(tmpDir, finalDir);
    } catch (err) {
      // Put the previous version back now rather than leave `finalDir` missing until a recovery.
      await rename(backup, finalDir).catch(() => undefined);
      throw err;
    }
    await fsyncDir(parent);
    await rm(backup, { recursive: true, force: true });
  } else {
    await rename(tmpDir, finalDir);
    await fsyncDir(parent);
  }
}

/**
 * Build a directory atomically: `write` fills a fresh temp sibling of `finalDir`, which then
 * replaces `finalDir` ({@link replaceDirAtomic}). If `write` throws, the temp dir is removed and
 * `finalDir` is untouched.
 */
export async function writeDirAtomic<T>(
  finalDir: string,
  write: (tmpDir: string) => Promise<T>,
): Promise<T> {
  await mkdir(dirname(finalDir), { recursive: true });
  const tmp = tempSiblingPath(finalDir);
  await mkdir(tmp);
  try {
    const result = await write(tmp);
    await replaceDirAtomic(tmp, finalDir);
    return result;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Install a directory only if none exists at `finalDir` (for caches whose content is
 * deterministic): `write` fills a temp sibling that is fsynced and renamed into place. If another
 * process installs it first, ours is discarded. Returns true when this call installed it.
 */
export async function writeDirOnce(
  finalDir: string,
  write: (tmpDir: string) => Promise<void>,
): Promise<boolean> {
  if (await exists(finalDir)) return false;
  await mkdir(dirname(finalDir), { recursive: true });
  const tmp = tempSiblingPath(finalDir);
  await mkdir(tmp);
  try {
    await write(tmp);
    await fsyncTree(tmp);
    await rename(tmp, finalDir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === "ENOTEMPTY" || code === "EEXIST") && (await exists(finalDir))) return false;
    throw err;
  }
  await fsyncDir(dirname(finalDir));
  return true;
}

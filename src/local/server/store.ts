import { chmod, mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  readdirIfExists,
  recoverAtomicDirsIn,
  writeDirAtomic,
  writeFileAtomic,
} from "../../fs/atomic.js";
import type { ResolvedLoraConfig } from "../engine/api.js";
import { type CheckpointKind, checkpointType, dirNameToId, idToDirName } from "./names.js";
import { ownerMayBeAlive } from "./process-alive.js";

/** A client session (`create_session`). */
export interface SessionRecord {
  sessionId: string;
  createdAt: string;
  tags: string[];
  userMetadata: Record<string, unknown>;
  projectId?: string;
  sdkVersion?: string;
  trainingRunIds: string[];
  samplerIds: string[];
}

/** A training run: one LoRA model, id `{session_id}:train:{n}`. */
export interface RunRecord {
  trainingRunId: string;
  sessionId: string;
  baseModel: string;
  lora: ResolvedLoraConfig;
  userMetadata: Record<string, unknown>;
  createdAt: string;
  lastRequestTime: string;
}

/** A saved checkpoint (`weights/<name>` or `sampler_weights/<name>`). */
export interface CheckpointRecord {
  runId: string;
  kind: CheckpointKind;
  name: string;
  createdAt: string;
  sizeBytes: number;
  public: boolean;
  expiresAt?: string;
}

/** A sampler (sampling session): a base model plus optionally sampler weights. */
export interface SamplerRecord {
  samplerId: string;
  sessionId: string;
  baseModel: string;
  modelPath?: string;
}

const META_FILE = "tinker-checkpoint.json";

export function checkpointId(c: Pick<CheckpointRecord, "kind" | "name">): string {
  return `${c.kind}/${c.name}`;
}

export function tinkerPathOf(c: Pick<CheckpointRecord, "runId" | "kind" | "name">): string {
  return `tinker://${c.runId}/${c.kind}/${c.name}`;
}

/**
 * Durable server state under `dataDir`, mirrored in memory:
 *
 * ```
 * sessions/<id>.json                      session metadata
 * samplers/<id>.json                      sampler metadata
 * runs/<run>/run.json                     training run metadata
 * runs/<run>/weights/<name>/              training checkpoint (adapter + optimizer + metadata)
 * runs/<run>/sampler_weights/<name>/      sampler checkpoint (adapter + metadata)
 * ```
 *
 * Ids are escaped into directory names. Every write is atomic (temp + rename), so a crash leaves
 * either the old or the new version; temp entries of writers that died are removed on load.
 * Memory follows disk: a record is listed only once its file is written. Folders are private to
 * the user (0700) and files 0600.
 */
export class ServerStore {
  readonly sessions = new Map<string, SessionRecord>();
  readonly runs = new Map<string, RunRecord>();
  readonly samplers = new Map<string, SamplerRecord>();
  /** runId -> checkpoint id -> record. */
  readonly checkpoints = new Map<string, Map<string, CheckpointRecord>>();
  private readonly writes = new Map<string, Promise<void>>();
  /** Parsed JSON files by path, with the stat they were read at (listings re-read only changes). */
  private readonly parsed = new Map<string, { mtimeMs: number; size: number; value: unknown }>();

  constructor(readonly dataDir: string) {}

  /** Reads everything saved under the data directory, repairing interrupted checkpoint writes. */
  async load(): Promise<void> {
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    await chmod(this.dataDir, 0o700).catch(() => undefined); // an older, world-readable one
    for (const sub of ["sessions", "samplers", "runs"]) {
      await mkdir(join(this.dataDir, sub), { recursive: true, mode: 0o700 });
    }
    await this.scan(true);
  }

  /**
   * Picks up records other processes wrote to the same data directory since `load()` (several
   * embedded servers may share the default one). Never repairs: a write in progress elsewhere
   * must not be touched.
   */
  async rescan(): Promise<void> {
    await this.scan(false);
  }

  /** Re-reads one run and its checkpoints from disk; false when it does not exist there. */
  async reloadRun(runId: string, recover = false): Promise<boolean> {
    const dir = this.runDir(runId);
    if (recover) await removeDeadWritersTemps(dir);
    const run = await this.readJsonCached<RunRecord>(join(dir, "run.json"));
    if (!run || run.trainingRunId !== runId) return false;
    if (!this.runs.has(runId)) this.runs.set(runId, run);
    const cps = new Map<string, CheckpointRecord>();
    for (const kind of ["weights", "sampler_weights"] as const) {
      const kindDir = join(dir, kind);
      if (recover) {
        await removeDeadWritersTemps(kindDir);
        // A crash between the two renames of an atomic replace leaves only the hidden backup of a
        // checkpoint, so recovery must look at the whole folder, not just the visible names.
        await recoverAtomicDirsIn(kindDir);
      }
      for (const name of await listDirs(kindDir)) {
        const rec = await this.readJsonCached<CheckpointRecord>(join(kindDir, name, META_FILE));
        if (rec && rec.name === name && rec.kind === kind) cps.set(checkpointId(rec), rec);
      }
    }
    this.checkpoints.set(runId, cps);
    return true;
  }

  private async scan(recover: boolean): Promise<void> {
    const sessions = join(this.dataDir, "sessions");
    const samplers = join(this.dataDir, "samplers");
    if (recover) {
      await removeDeadWritersTemps(sessions);
      await removeDeadWritersTemps(samplers);
      await removeDeadWritersTemps(join(this.dataDir, "runs"));
    }
    for (const s of await this.readNewJson<SessionRecord>(sessions, this.sessions)) {
      if (!this.sessions.has(s.sessionId)) this.sessions.set(s.sessionId, s);
    }
    for (const s of await this.readNewJson<SamplerRecord>(samplers, this.samplers)) {
      if (!this.samplers.has(s.samplerId)) this.samplers.set(s.samplerId, s);
    }
    for (const dir of await listDirs(join(this.dataDir, "runs"))) {
      await this.reloadRun(dirNameToId(dir), recover);
    }
  }

  /** Records in `dir` whose ids `known` does not hold yet (known ones are never re-read). */
  private async readNewJson<T>(dir: string, known: ReadonlyMap<string, unknown>): Promise<T[]> {
    const out: T[] = [];
    for (const n of await readdirIfExists(dir)) {
      if (n.startsWith(".") || !n.endsWith(".json")) continue;
      if (known.has(dirNameToId(n.slice(0, -".json".length)))) continue;
      const v = await this.readJsonCached<T>(join(dir, n));
      if (v) out.push(v);
    }
    return out;
  }

  /** A JSON file, parsed again only when its size or mtime changed since the last read. */
  private async readJsonCached<T>(path: string): Promise<T | undefined> {
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) {
      this.parsed.delete(path);
      return undefined;
    }
    const hit = this.parsed.get(path);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.value as T;
    const value = await readJson<T>(path);
    if (value !== undefined) this.parsed.set(path, { mtimeMs: st.mtimeMs, size: st.size, value });
    return value;
  }

  async putSession(s: SessionRecord): Promise<void> {
    await this.updateSession(s.sessionId, () => s);
  }

  /**
   * Replaces a session with `update(current)` (skipped when it returns undefined). Updates of one
   * session apply one after another, each to the result of the previous one, and memory changes
   * only once the file is written.
   */
  async updateSession(
    sessionId: string,
    update: (current: SessionRecord | undefined) => SessionRecord | undefined,
  ): Promise<void> {
    const path = join(this.dataDir, "sessions", `${idToDirName(sessionId)}.json`);
    await this.persist(
      path,
      () => update(this.sessions.get(sessionId)),
      (v) => this.sessions.set(sessionId, v),
    );
  }

  async putSampler(s: SamplerRecord): Promise<void> {
    const path = join(this.dataDir, "samplers", `${idToDirName(s.samplerId)}.json`);
    await this.persist(
      path,
      () => s,
      (v) => this.samplers.set(s.samplerId, v),
    );
  }

  async putRun(r: RunRecord): Promise<void> {
    const path = join(this.runDir(r.trainingRunId), "run.json");
    await this.persist(
      path,
      () => r,
      (v) => {
        this.runs.set(r.trainingRunId, v);
        if (!this.checkpoints.has(r.trainingRunId))
          this.checkpoints.set(r.trainingRunId, new Map());
      },
    );
  }

  /** Forgets a run and deletes its folder (undoing a creation that failed half way). */
  async removeRun(runId: string): Promise<void> {
    await rm(this.runDir(runId), { recursive: true, force: true });
    this.runs.delete(runId);
    this.checkpoints.delete(runId);
  }

  /**
   * Writes `compute()` to `path`, then hands it to `commit`; one write per file at a time, so
   * overlapping updates can never leave an older version on disk or in memory.
   */
  private persist<T>(
    path: string,
    compute: () => T | undefined,
    commit: (v: T) => void,
  ): Promise<void> {
    const prev = this.writes.get(path) ?? Promise.resolve();
    const next = prev
      .catch(() => undefined)
      .then(async () => {
        const value = compute();
        if (value === undefined) return;
        await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
        commit(value);
      });
    this.writes.set(path, next);
    void next
      .finally(() => {
        if (this.writes.get(path) === next) this.writes.delete(path);
      })
      .catch(() => undefined);
    return next;
  }

  runDir(runId: string): string {
    return join(this.dataDir, "runs", idToDirName(runId));
  }

  checkpointDir(runId: string, kind: CheckpointKind, name: string): string {
    return join(this.runDir(runId), kind, name);
  }

  getCheckpoint(runId: string, id: string): CheckpointRecord | undefined {
    return this.checkpoints.get(runId)?.get(id);
  }

  /**
   * Writes a checkpoint atomically: `write` fills a temp directory, the metadata file is added, and
   * the directory replaces any previous one in a single rename.
   */
  async saveCheckpoint(
    runId: string,
    kind: CheckpointKind,
    name: string,
    write: (dir: string) => Promise<void>,
    opts: { ttlSeconds?: number } = {},
  ): Promise<CheckpointRecord> {
    const now = new Date();
    const rec = await writeDirAtomic(this.checkpointDir(runId, kind, name), async (tmp) => {
      await write(tmp);
      await makePrivate(tmp);
      const r: CheckpointRecord = {
        runId,
        kind,
        name,
        createdAt: now.toISOString(),
        sizeBytes: await dirSize(tmp),
        public: false,
      };
      if (opts.ttlSeconds !== undefined) {
        r.expiresAt = new Date(now.getTime() + opts.ttlSeconds * 1000).toISOString();
      }
      await writeFileAtomic(join(tmp, META_FILE), `${JSON.stringify(r, null, 2)}\n`, {
        mode: 0o600,
      });
      return r;
    });
    let map = this.checkpoints.get(runId);
    if (!map) {
      map = new Map();
      this.checkpoints.set(runId, map);
    }
    map.set(checkpointId(rec), rec);
    return rec;
  }

  /** Rewrites a checkpoint's metadata (publish state, TTL). */
  async updateCheckpoint(rec: CheckpointRecord): Promise<void> {
    const path = join(this.checkpointDir(rec.runId, rec.kind, rec.name), META_FILE);
    await writeFileAtomic(path, `${JSON.stringify(rec, null, 2)}\n`, { mode: 0o600 });
    this.checkpoints.get(rec.runId)?.set(checkpointId(rec), rec);
  }

  async deleteCheckpoint(rec: CheckpointRecord): Promise<void> {
    const dir = this.checkpointDir(rec.runId, rec.kind, rec.name);
    await rm(dir, { recursive: true, force: true });
    this.parsed.delete(join(dir, META_FILE));
    this.checkpoints.get(rec.runId)?.delete(checkpointId(rec));
  }

  /** Deletes checkpoints whose TTL has passed; returns them. */
  async sweepExpired(now = Date.now()): Promise<CheckpointRecord[]> {
    const expired: CheckpointRecord[] = [];
    for (const map of this.checkpoints.values()) {
      for (const rec of map.values()) {
        if (rec.expiresAt !== undefined && Date.parse(rec.expiresAt) <= now) expired.push(rec);
      }
    }
    for (const rec of expired) await this.deleteCheckpoint(rec);
    return expired;
  }

  /** Files of a checkpoint (relative names, server metadata excluded), for archives. */
  async checkpointFiles(rec: CheckpointRecord): Promise<Array<{ name: string; path: string }>> {
    const root = this.checkpointDir(rec.runId, rec.kind, rec.name);
    const out: Array<{ name: string; path: string }> = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true });
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const e of entries) {
        if (prefix === "" && e.name === META_FILE) continue;
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p, `${prefix}${e.name}/`);
        else if (e.isFile()) out.push({ name: `${prefix}${e.name}`, path: p });
      }
    };
    await walk(root, "");
    return out;
  }
}

export function toCheckpointJson(c: CheckpointRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {
    checkpoint_id: checkpointId(c),
    checkpoint_type: checkpointType(c.kind),
    time: c.createdAt,
    tinker_path: tinkerPathOf(c),
    size_bytes: c.sizeBytes,
    public: c.public,
  };
  if (c.expiresAt !== undefined) out.expires_at = c.expiresAt;
  return out;
}

async function listDirs(dir: string): Promise<string[]> {
  const entries = await readdirIfExists(dir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith(".")).map((e) => e.name);
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

/** Temp entries (`.<name>.tmp-<pid>-<hex>`) in `dir` left by writer processes that have died. */
async function removeDeadWritersTemps(dir: string): Promise<void> {
  for (const n of await readdirIfExists(dir)) {
    const m = /^\..+\.tmp-(\d+)-[0-9a-f]{12}$/.exec(n);
    if (m && !ownerMayBeAlive(Number(m[1])))
      await rm(join(dir, n), { recursive: true, force: true });
  }
}

/** Folders 0700 and files 0600 under `dir`, whatever mode the writer gave them. */
async function makePrivate(dir: string): Promise<void> {
  await chmod(dir, 0o700);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await makePrivate(p);
    else if (e.isFile()) await chmod(p, 0o600);
  }
}

async function dirSize(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await dirSize(p);
    else if (e.isFile()) total += (await stat(p)).size;
  }
  return total;
}

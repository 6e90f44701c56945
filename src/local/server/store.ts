import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { ResolvedLoraConfig } from "../engine/api.js";
import {
  readdirIfExists,
  recoverAtomicDirsIn,
  writeDirAtomic,
  writeJsonAtomic,
} from "../fs/atomic.js";
import { type CheckpointKind, checkpointType, dirNameToId, idToDirName } from "./names.js";

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
 * either the old or the new version, and unfinished temp entries are ignored on load.
 */
export class ServerStore {
  readonly sessions = new Map<string, SessionRecord>();
  readonly runs = new Map<string, RunRecord>();
  readonly samplers = new Map<string, SamplerRecord>();
  /** runId -> checkpoint id -> record. */
  readonly checkpoints = new Map<string, Map<string, CheckpointRecord>>();
  private readonly writes = new Map<string, Promise<void>>();

  constructor(readonly dataDir: string) {}

  /** Reads everything saved under the data directory, repairing interrupted checkpoint writes. */
  async load(): Promise<void> {
    await mkdir(this.dataDir, { recursive: true });
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
    const run = await readJson<RunRecord>(join(dir, "run.json"));
    if (!run || run.trainingRunId !== runId) return false;
    if (!this.runs.has(runId)) this.runs.set(runId, run);
    const cps = new Map<string, CheckpointRecord>();
    for (const kind of ["weights", "sampler_weights"] as const) {
      const kindDir = join(dir, kind);
      // A crash between the two renames of an atomic replace leaves only the hidden backup of a
      // checkpoint, so recovery must look at the whole folder, not just the visible names.
      if (recover) await recoverAtomicDirsIn(kindDir);
      for (const name of await listDirs(kindDir)) {
        const rec = await readJson<CheckpointRecord>(join(kindDir, name, META_FILE));
        if (rec && rec.name === name && rec.kind === kind) cps.set(checkpointId(rec), rec);
      }
    }
    this.checkpoints.set(runId, cps);
    return true;
  }

  private async scan(recover: boolean): Promise<void> {
    for (const s of await readJsonDir<SessionRecord>(join(this.dataDir, "sessions"))) {
      if (!this.sessions.has(s.sessionId)) this.sessions.set(s.sessionId, s);
    }
    for (const s of await readJsonDir<SamplerRecord>(join(this.dataDir, "samplers"))) {
      if (!this.samplers.has(s.samplerId)) this.samplers.set(s.samplerId, s);
    }
    for (const dir of await listDirs(join(this.dataDir, "runs"))) {
      await this.reloadRun(dirNameToId(dir), recover);
    }
  }

  async putSession(s: SessionRecord): Promise<void> {
    this.sessions.set(s.sessionId, s);
    const path = join(this.dataDir, "sessions", `${idToDirName(s.sessionId)}.json`);
    await this.persist(path, () => this.sessions.get(s.sessionId));
  }

  async putSampler(s: SamplerRecord): Promise<void> {
    this.samplers.set(s.samplerId, s);
    const path = join(this.dataDir, "samplers", `${idToDirName(s.samplerId)}.json`);
    await this.persist(path, () => this.samplers.get(s.samplerId));
  }

  async putRun(r: RunRecord): Promise<void> {
    this.runs.set(r.trainingRunId, r);
    if (!this.checkpoints.has(r.trainingRunId)) this.checkpoints.set(r.trainingRunId, new Map());
    const path = join(this.runDir(r.trainingRunId), "run.json");
    await this.persist(path, () => this.runs.get(r.trainingRunId));
  }

  /**
   * Writes the latest in-memory value of a record, one write per file at a time, so overlapping
   * updates can never leave an older version on disk.
   */
  private persist(path: string, latest: () => unknown): Promise<void> {
    const prev = this.writes.get(path) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(() => writeJsonAtomic(path, latest()));
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
      await writeJsonAtomic(join(tmp, META_FILE), r);
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
    await writeJsonAtomic(join(this.checkpointDir(rec.runId, rec.kind, rec.name), META_FILE), rec);
    this.checkpoints.get(rec.runId)?.set(checkpointId(rec), rec);
  }

  async deleteCheckpoint(rec: CheckpointRecord): Promise<void> {
    this.checkpoints.get(rec.runId)?.delete(checkpointId(rec));
    await rm(this.checkpointDir(rec.runId, rec.kind, rec.name), { recursive: true, force: true });
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

async function readJsonDir<T>(dir: string): Promise<T[]> {
  const out: T[] = [];
  for (const n of await readdirIfExists(dir)) {
    if (n.startsWith(".") || !n.endsWith(".json")) continue;
    const v = await readJson<T>(join(dir, n));
    if (v) out.push(v);
  }
  return out;
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

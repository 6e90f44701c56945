import type { LocalEngine } from "../engine/api.js";

interface Entry {
  key: string;
  adapterId: string;
  ready: Promise<void>;
  inflight: number;
  lastUsed: number;
  /** Ephemeral adapters cannot be reloaded once dropped; keyed to the model that made them. */
  ephemeralOf?: string;
  dropWhenIdle: boolean;
  dropped: boolean;
}

export interface SamplerAdapterOptions {
  /** Reloadable (checkpoint-backed) adapters kept in the engine at once. */
  maxCached?: number;
  /** Ephemeral adapters kept per training model (older ones are reclaimed). */
  ephemeralPerModel?: number;
}

/**
 * Read-only adapters the engine holds for sampling: checkpoint-backed ones (reloadable, kept in an
 * LRU) and ephemeral ones made by `save_weights_and_get_sampling_client` (the newest few per model
 * are kept). An adapter in use by a running sample is never dropped mid-request.
 */
export class SamplerAdapters {
  private readonly entries = new Map<string, Entry>();
  private readonly maxCached: number;
  private readonly ephemeralPerModel: number;

  constructor(
    private readonly engine: LocalEngine,
    opts: SamplerAdapterOptions = {},
  ) {
    this.maxCached = opts.maxCached ?? 8;
    this.ephemeralPerModel = opts.ephemeralPerModel ?? 4;
  }

  private counter = 0;

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /**
   * Registers the adapter for `key` (a checkpoint path, or an ephemeral sampler id) unless present:
   * `load` receives a fresh engine adapter id to load into. Evicts old entries.
   * `ephemeralOf` marks it as an ephemeral snapshot of that training model.
   */
  register(
    key: string,
    load: (adapterId: string) => Promise<void>,
    ephemeralOf?: string,
  ): Promise<void> {
    const existing = this.entries.get(key);
    if (existing) return existing.ready;
    // A fresh engine id per load, so dropping an evicted copy never hits a newer one.
    const adapterId = `sampler-${++this.counter}:${key}`;
    const entry: Entry = {
      key,
      adapterId,
      ready: load(adapterId),
      inflight: 0,
      lastUsed: Date.now(),
      dropWhenIdle: false,
      dropped: false,
    };
    if (ephemeralOf !== undefined) entry.ephemeralOf = ephemeralOf;
    this.entries.set(key, entry);
    entry.ready.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    this.evict();
    return entry.ready;
  }

  /**
   * Runs `job` with the adapter of `key` pinned (not dropped while `job` runs). Returns undefined
   * when `key` is not registered.
   */
  async use<T>(
    key: string,
    job: (adapterId: string) => Promise<T>,
  ): Promise<{ value: T } | undefined> {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    entry.inflight++;
    entry.lastUsed = Date.now();
    try {
      await entry.ready;
      return { value: await job(entry.adapterId) };
    } finally {
      entry.inflight--;
      if (entry.inflight === 0 && entry.dropWhenIdle) this.drop(entry);
    }
  }

  /** Forgets `key` (its weights changed on disk); the next use loads it again. */
  forget(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    entry.dropWhenIdle = true;
    if (entry.inflight === 0) this.drop(entry);
  }

  /**
   * The training run each adapter held in the engine comes from (for memory accounting): the model
   * of an ephemeral snapshot, the run in a checkpoint path key (`tinker://<run>/...`).
   */
  heldRuns(): string[] {
    const out: string[] = [];
    for (const e of this.entries.values()) {
      const run = e.ephemeralOf ?? /^tinker:\/\/([^/]+)\//.exec(e.key)?.[1];
      if (run !== undefined) out.push(run);
    }
    return out;
  }

  /** Drops every adapter (server shutdown is handled by the engine itself). */
  clear(): void {
    this.entries.clear();
  }

  private evict(): void {
    const byModel = new Map<string, Entry[]>();
    const reloadable: Entry[] = [];
    for (const e of this.entries.values()) {
      if (e.dropWhenIdle) continue;
      if (e.ephemeralOf === undefined) reloadable.push(e);
      else {
        const list = byModel.get(e.ephemeralOf) ?? [];
        list.push(e);
        byModel.set(e.ephemeralOf, list);
      }
    }
    const victims: Entry[] = [];
    for (const list of byModel.values()) {
      if (list.length > this.ephemeralPerModel) {
        victims.push(...list.slice(0, list.length - this.ephemeralPerModel)); // insertion order = age
      }
    }
    if (reloadable.length > this.maxCached) {
      reloadable.sort((a, b) => a.lastUsed - b.lastUsed);
      victims.push(...reloadable.slice(0, reloadable.length - this.maxCached));
    }
    for (const v of victims) {
      v.dropWhenIdle = true;
      if (v.inflight === 0) this.drop(v);
    }
  }

  private drop(entry: Entry): void {
    if (entry.dropped) return;
    entry.dropped = true;
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
    entry.ready.then(() => this.engine.dropAdapter(entry.adapterId)).catch(() => undefined);
  }
}

import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { TinkerValidationError } from "../../client/errors.js";
import {
  ADAM_DEFAULTS,
  type AdamParams,
  LOSS_FN_TYPES,
  type LossFnType,
} from "../../client/types/params.js";
import { parseTinkerPath } from "../../client/wire/paths.js";
import { writeDirAtomic } from "../../fs/atomic.js";
import type { BaseModelInfo, LocalEngine, ResolvedLoraConfig } from "../engine/api.js";
import { validateAdamParams } from "../engine/train/adamw.js";
import {
  adapterBytes,
  checkCreateModel,
  checkForwardBackward,
  checkSample,
  type HeldMemory,
} from "./admission.js";
import { type FutureResult, type FutureStore, UserError } from "./futures.js";
import { badRequest, HttpError, notFound } from "./http-error.js";
import { type CheckpointKind, validateCheckpointName } from "./names.js";
import type {
  CreateModelInput,
  CreateSamplingSessionInput,
  CreateSessionInput,
  ForwardBackwardInput,
  LoadWeightsInput,
  OptimStepInput,
  SampleInput,
  SaveWeightsForSamplerInput,
  SaveWeightsInput,
} from "./requests.js";
import { SamplerAdapters } from "./sampler-adapters.js";
import { Semaphore } from "./semaphore.js";
import { ModelSequencer } from "./sequencer.js";
import {
  type CheckpointRecord,
  checkpointId,
  type RunRecord,
  type SamplerRecord,
  type ServerStore,
  type SessionRecord,
  tinkerPathOf,
} from "./store.js";

export interface ServiceOptions {
  engine: LocalEngine;
  store: ServerStore;
  futures: FutureStore;
  /** How long requests wait for a missing seq_id (default 60 s). */
  seqGapTimeoutMs?: number;
  /** Samples handed to the engine at once (default 16). */
  samplingConcurrency?: number;
  /** Samples queued before `asample` answers 429 (default 10 000). */
  maxQueuedSamples?: number;
  /** Where ephemeral sampler snapshots are staged. */
  scratchDir: string;
  /** Engine memory admission control lets requests use (default 80% of the engine heap limit). */
  engineMemoryBytes?: number | undefined;
}

/** A training model loaded in this server process. */
interface LiveModel {
  run: RunRecord;
  /** Its requests in seq_id order; the creation itself is seq_id 0, so later ones wait for it. */
  sequencer: ModelSequencer;
}

/** A sampler usable for `asample`: base model plus an adapter key (absent = base model). */
interface LiveSampler {
  record: SamplerRecord;
  /** SamplerAdapters key: a checkpoint path, or `ephemeral:<id>`. */
  adapterKey?: string;
  /** How to (re)load that adapter; absent for ephemeral ones, which cannot be reloaded. */
  checkpointDir?: string;
}

/**
 * The Tinker API semantics of the local server, independent of HTTP: sessions, training models
 * and their ordered request streams, checkpoints, samplers and sampling. Every long operation is a
 * future in `futures`; methods return the request id.
 */
export class TinkerService {
  readonly engine: LocalEngine;
  readonly store: ServerStore;
  readonly futures: FutureStore;
  private readonly models = new Map<string, LiveModel>();
  /** create_model / create-via-load requests by `{session}:{model_seq_id}` (idempotent retries). */
  private readonly creations = new Map<string, string>();
  private readonly samplers = new Map<string, LiveSampler>();
  private readonly sampleRequests = new Map<string, string>();
  private readonly adapters: SamplerAdapters;
  private readonly sampling: Semaphore;
  private readonly maxQueuedSamples: number;
  private readonly gapTimeoutMs: number;
  private readonly scratchDir: string;
  private readonly engineMemoryBytes: number | undefined;
  private baseModels: Promise<BaseModelInfo[]> | undefined;
  /** Base models looked up so far, for synchronous admission checks. */
  private readonly baseInfo = new Map<string, BaseModelInfo>();
  private readonly heartbeats = new Map<string, number>();

  constructor(opts: ServiceOptions) {
    this.engine = opts.engine;
    this.store = opts.store;
    this.futures = opts.futures;
    this.adapters = new SamplerAdapters(opts.engine);
    this.sampling = new Semaphore(opts.samplingConcurrency ?? 16);
    this.maxQueuedSamples = opts.maxQueuedSamples ?? 10_000;
    this.gapTimeoutMs = opts.seqGapTimeoutMs ?? 60_000;
    this.scratchDir = opts.scratchDir;
    this.engineMemoryBytes = opts.engineMemoryBytes;
  }

  // ---- sessions ------------------------------------------------------------------------------

  async createSession(input: CreateSessionInput): Promise<string> {
    const rec: SessionRecord = {
      sessionId: randomUUID(),
      createdAt: new Date().toISOString(),
      tags: input.tags,
      userMetadata: input.userMetadata,
      trainingRunIds: [],
      samplerIds: [],
    };
    if (input.projectId !== undefined) rec.projectId = input.projectId;
    if (input.sdkVersion !== undefined) rec.sdkVersion = input.sdkVersion;
    await this.store.putSession(rec);
    this.heartbeats.set(rec.sessionId, Date.now());
    return rec.sessionId;
  }

  heartbeat(sessionId: string): void {
    this.requireSession(sessionId);
    this.heartbeats.set(sessionId, Date.now());
  }

  requireSession(sessionId: string): SessionRecord {
    const s = this.store.sessions.get(sessionId);
    if (!s) {
      throw notFound(`unknown session_id ${JSON.stringify(sessionId)}; call create_session first`);
    }
    return s;
  }

  async setSessionProject(sessionId: string, projectId: string): Promise<void> {
    this.requireSession(sessionId);
    await this.store.updateSession(sessionId, (s) => s && { ...s, projectId });
  }

  // ---- base models ---------------------------------------------------------------------------

  listBaseModels(): Promise<BaseModelInfo[]> {
    if (!this.baseModels) {
      this.baseModels = this.engine.listBaseModels();
      this.baseModels.catch(() => {
        this.baseModels = undefined;
      });
    }
    return this.baseModels;
  }

  private async requireBaseModel(name: string): Promise<BaseModelInfo> {
    const models = await this.listBaseModels();
    const found = models.find((m) => m.name === name);
    if (found) this.baseInfo.set(name, found);
    if (!found) {
      const names = models.map((m) => m.name).join(", ");
      throw badRequest(
        `unknown base_model ${JSON.stringify(name)}; this server serves: ${names || "(none)"} (see get_server_capabilities, or start the server with --model-dir / --preset)`,
      );
    }
    return found;
  }

  // ---- training models -----------------------------------------------------------------------

  /** `create_model`: a fresh LoRA model `{session}:train:{model_seq_id}`. */
  async createModel(input: CreateModelInput): Promise<{ requestId: string; modelId: string }> {
    const session = this.requireSession(input.sessionId);
    const modelId = `${session.sessionId}:train:${input.modelSeqId}`;
    const prior = this.creations.get(modelId);
    if (prior) return { requestId: prior, modelId };
    if (this.store.runs.has(modelId)) {
      throw badRequest(
        `model ${modelId} already exists; each create_model needs a new model_seq_id from the session's counter`,
      );
    }
    const lora = resolveLora(input.lora);
    const base = await this.requireBaseModel(input.baseModel);
    checkCreateModel(base, lora, this.heldMemory(base.name));
    const raced = this.creations.get(modelId); // an identical retry may have landed meanwhile
    if (raced) return { requestId: raced, modelId };
    const now = new Date().toISOString();
    const run: RunRecord = {
      trainingRunId: modelId,
      sessionId: session.sessionId,
      baseModel: input.baseModel,
      lora,
      userMetadata: input.userMetadata ?? {},
      createdAt: now,
      lastRequestTime: now,
    };
    const { requestId } = this.registerModel(run, async () => {
      await this.engine.createAdapter(modelId, run.baseModel, lora);
      await this.persistNewRun(run);
      return { kind: "json", value: { model_id: modelId, type: "create_model" } };
    });
    this.creations.set(modelId, requestId);
    return { requestId, modelId };
  }

  /**
   * Registers a live model whose first job (seq_id 0) is `init`; later requests queue behind it.
   */
  private registerModel(
    run: RunRecord,
    init: () => Promise<FutureResult>,
  ): { requestId: string; model: LiveModel } {
    const sequencer = new ModelSequencer(this.futures, `model ${run.trainingRunId}`, {
      firstSeqId: 0,
      gapTimeoutMs: this.gapTimeoutMs,
    });
    const model: LiveModel = { run, sequencer };
    this.models.set(run.trainingRunId, model);
    const requestId = sequencer.submit(0, "create", async () => {
      try {
        return await init();
      } catch (err) {
        this.models.delete(run.trainingRunId);
        this.creations.delete(run.trainingRunId);
        sequencer.close(`model ${run.trainingRunId} could not be created: ${errorText(err)}`);
        throw err;
      }
    });
    return { requestId, model };
  }

  /**
   * Records a run whose adapter the engine now holds. On failure (a full disk, say) nothing of it
   * stays: no listed run, no run folder, no engine adapter; the same request can be retried.
   */
  private async persistNewRun(run: RunRecord): Promise<void> {
    const id = run.trainingRunId;
    try {
      await this.store.putRun(run);
      await this.store.updateSession(run.sessionId, (s) =>
        s && !s.trainingRunIds.includes(id)
          ? { ...s, trainingRunIds: [...s.trainingRunIds, id] }
          : undefined,
      );
    } catch (err) {
      await this.store.removeRun(id).catch(() => undefined);
      await this.engine.dropAdapter(id).catch(() => undefined);
      throw err;
    }
  }

  /** The live model `modelId`, or a 404 that says what to do. */
  requireModel(modelId: string): LiveModel {
    const m = this.models.get(modelId);
    if (m) {
      m.run.lastRequestTime = new Date().toISOString();
      return m;
    }
    const run = this.store.runs.get(modelId);
    if (run) {
      const latest = this.latestCheckpoint(modelId, "weights");
      const hint = latest
        ? `restore it with create_training_client_from_state("${tinkerPathOf(latest)}")`
        : "it has no saved training checkpoint; create a new model";
      throw notFound(
        `model ${modelId} is not loaded (the server restarted or it was unloaded); ${hint}`,
      );
    }
    throw notFound(
      `unknown model_id ${JSON.stringify(modelId)}; create it with create_model (ids look like "<session_id>:train:<n>")`,
    );
  }

  async getInfo(modelId: string): Promise<Record<string, unknown>> {
    const m = this.requireModel(modelId);
    const base = await this.engine.getBaseModel(m.run.baseModel);
    const modelData: Record<string, unknown> = { arch: base.arch, model_name: base.name };
    if (base.tokenizerId !== undefined) modelData.tokenizer_id = base.tokenizerId;
    return {
      type: "get_info",
      model_data: modelData,
      model_id: modelId,
      is_lora: true,
      lora_rank: m.run.lora.rank,
      model_name: m.run.baseModel,
    };
  }

  unloadModel(modelId: string): string {
    const m = this.requireModel(modelId);
    return m.sequencer.submit(undefined, "unload", async () => {
      await this.engine.dropAdapter(modelId);
      this.models.delete(modelId);
      this.creations.delete(modelId);
      m.sequencer.close(
        `model ${modelId} was unloaded; restore it from a checkpoint with create_training_client_from_state`,
      );
      return { kind: "json", value: { model_id: modelId, type: "unload_model" } };
    });
  }

  forwardBackward(input: ForwardBackwardInput): string {
    const m = this.requireModel(input.modelId);
    const kind = input.forwardOnly ? "forward" : "forward_backward";
    return this.submitChecked(
      m,
      input.seqId,
      kind,
      () => {
        const lossFn = requireLossFn(input.lossFn);
        if (input.data.length === 0) {
          throw badRequest("forward_backward needs at least one datum in data");
        }
        const base = this.baseInfo.get(m.run.baseModel);
        if (base) {
          const tokens = input.data.reduce((n, d) => n + d.modelInput.length, 0);
          const held = this.heldMemory(base.name);
          checkForwardBackward(base, m.run.lora.rank, tokens, !input.forwardOnly, held);
        }
        return lossFn;
      },
      async (lossFn) => {
        const out = await this.engine.forwardBackward(
          input.modelId,
          input.data,
          lossFn,
          input.lossFnConfig,
          input.forwardOnly,
        );
        return { kind: "forward_backward", value: out };
      },
    );
  }

  optimStep(input: OptimStepInput): string {
    const m = this.requireModel(input.modelId);
    return this.submitChecked(
      m,
      input.seqId,
      "optim_step",
      () => resolveAdam(input.adam),
      async (adam) => {
        const out = await this.engine.optimStep(input.modelId, adam);
        return { kind: "json", value: { metrics: out.metrics ?? {} } };
      },
    );
  }

  saveWeights(input: SaveWeightsInput): string {
    const m = this.requireModel(input.modelId);
    return this.submitChecked(
      m,
      input.seqId,
      "save_weights",
      () => ({ name: validateCheckpointName(input.name), ttl: validateTtl(input.ttlSeconds) }),
      async ({ name, ttl }) => {
        const id = checkpointId({ kind: "weights", name });
        if (!input.overwrite && this.store.getCheckpoint(input.modelId, id)) {
          throw new UserError(
            `checkpoint ${id} already exists in run ${input.modelId}; pass overwrite=true or choose another name`,
          );
        }
        const rec = await this.saveCheckpoint(m, "weights", name, ttl);
        return { kind: "json", value: { path: tinkerPathOf(rec), type: "save_weights" } };
      },
    );
  }

  saveWeightsForSampler(input: SaveWeightsForSamplerInput): string {
    const m = this.requireModel(input.modelId);
    const kind = "save_weights_for_sampler";
    if (input.name === undefined) {
      const slot = input.samplingSessionSeqId;
      return this.submitChecked(
        m,
        input.seqId,
        kind,
        () => {
          if (slot === undefined) {
            throw badRequest(
              "save_weights_for_sampler needs either path (a checkpoint name) or sampling_session_seq_id (ephemeral weights)",
            );
          }
          return slot;
        },
        async (slot) => {
          const samplerId = await this.snapshotForSampling(m, slot);
          return { kind: "json", value: { sampling_session_id: samplerId, type: kind } };
        },
      );
    }
    const named = input.name;
    return this.submitChecked(
      m,
      input.seqId,
      kind,
      () => ({ name: validateCheckpointName(named), ttl: validateTtl(input.ttlSeconds) }),
      async ({ name, ttl }) => {
        const rec = await this.saveCheckpoint(m, "sampler_weights", name, ttl);
        return { kind: "json", value: { path: tinkerPathOf(rec), type: kind } };
      },
    );
  }

  /**
   * Queues `job` at `seqId` once `check` passes. A request `check` rejects (a 400 for the caller)
   * still uses up its seq_id, so the requests the client pipelined behind it run at once.
   */
  private submitChecked<T>(
    m: LiveModel,
    seqId: number | undefined,
    kind: string,
    check: () => T,
    job: (checked: T) => Promise<FutureResult>,
  ): string {
    let checked: T;
    try {
      checked = check();
    } catch (err) {
      m.sequencer.consume(seqId, kind, errorText(err));
      throw err;
    }
    return m.sequencer.submit(seqId, kind, () => job(checked));
  }

  /**
   * A sequenced request whose body could not be parsed: its seq_id is used up (see
   * {@link submitChecked}) when the body still named a live model and a seq_id.
   */
  consumeRejected(modelId: unknown, seqId: unknown, kind: string, err: unknown): void {
    if (typeof modelId !== "string" || typeof seqId !== "number") return;
    this.models.get(modelId)?.sequencer.consume(seqId, kind, errorText(err));
  }

  private async saveCheckpoint(
    m: LiveModel,
    kind: CheckpointKind,
    name: string,
    ttlSeconds: number | undefined,
  ): Promise<CheckpointRecord> {
    const runId = m.run.trainingRunId;
    const opts = ttlSeconds === undefined ? {} : { ttlSeconds };
    const rec = await this.store.saveCheckpoint(
      runId,
      kind,
      name,
      (dir) => this.engine.saveAdapter(runId, dir, { optimizer: kind === "weights" }),
      opts,
    );
    // A sampler cached from an older version of this path must not serve stale weights.
    this.adapters.forget(tinkerPathOf(rec));
    return rec;
  }

  /** Ephemeral sampler weights: a snapshot of the model, held by the engine, never listed. */
  private async snapshotForSampling(m: LiveModel, slot: number): Promise<string> {
    const runId = m.run.trainingRunId;
    const samplerId = `${m.run.sessionId}:sample:${slot}`;
    const key = `ephemeral:${samplerId}`;
    const stage = join(this.scratchDir, `snapshot-${randomUUID()}`);
    this.adapters.forget(key); // the slot is being reused: never serve the previous snapshot
    try {
      await writeDirAtomic(stage, (dir) =>
        this.engine.saveAdapter(runId, dir, { optimizer: false }),
      );
      await this.adapters.register(
        key,
        async (adapterId) => {
          await this.engine.loadAdapter(adapterId, stage, { optimizer: false });
        },
        runId,
      );
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
    const record: SamplerRecord = {
      samplerId,
      sessionId: m.run.sessionId,
      baseModel: m.run.baseModel,
    };
    try {
      await this.linkSamplerToSession(record);
    } catch (err) {
      this.adapters.forget(key);
      throw err;
    }
    this.samplers.set(samplerId, { record, adapterKey: key });
    return samplerId;
  }

  async loadWeights(input: LoadWeightsInput): Promise<{ requestId: string; modelId: string }> {
    if (input.modelId !== undefined) {
      const m = this.requireModel(input.modelId);
      const check = () => this.parseCheckpointPath(input.path, "path");
      const requestId = this.submitChecked(
        m,
        input.seqId,
        "load_weights",
        check,
        async (source) => {
          const rec = await this.requireCheckpoint(source.runId, source.kind, source.name);
          const srcRun = this.store.runs.get(rec.runId);
          if (srcRun && srcRun.baseModel !== m.run.baseModel) {
            throw new UserError(
              `checkpoint ${input.path} was trained on ${srcRun.baseModel} but model ${m.run.trainingRunId} uses ${m.run.baseModel}; load it into a model of the same base model`,
            );
          }
          await this.loadInto(m.run.trainingRunId, rec, input.optimizer);
          return {
            kind: "json",
            value: { path: input.path, model_id: m.run.trainingRunId, type: "load_weights" },
          };
        },
      );
      return { requestId, modelId: m.run.trainingRunId };
    }
    // Create-via-load: the load is the new model's first request (seq_id 0).
    const source = this.parseCheckpointPath(input.path, "path");
    if (input.sessionId === undefined || input.modelSeqId === undefined) {
      throw badRequest(
        "load_weights needs model_id and seq_id (load into an existing model), or session_id and model_seq_id (create a model from the checkpoint)",
      );
    }
    const session = this.requireSession(input.sessionId);
    const modelId = `${session.sessionId}:train:${input.modelSeqId}`;
    const prior = this.creations.get(modelId);
    if (prior) return { requestId: prior, modelId };
    if (this.store.runs.has(modelId)) {
      throw badRequest(`model ${modelId} already exists; use a new model_seq_id`);
    }
    const rec = await this.requireCheckpointNow(source.runId, source.kind, source.name);
    const srcRun = this.store.runs.get(rec.runId);
    if (!srcRun) throw notFound(`training run ${rec.runId} of ${input.path} is unknown`);
    const raced = this.creations.get(modelId); // an identical retry may have landed meanwhile
    if (raced) return { requestId: raced, modelId };
    if (input.baseModel !== undefined && input.baseModel !== srcRun.baseModel) {
      throw badRequest(
        `checkpoint ${input.path} was trained on ${srcRun.baseModel}, not ${input.baseModel}; omit base_model or pass the checkpoint's`,
      );
    }
    const base = await this.requireBaseModel(srcRun.baseModel);
    checkCreateModel(base, srcRun.lora, this.heldMemory(base.name));
    const now = new Date().toISOString();
    const run: RunRecord = {
      trainingRunId: modelId,
      sessionId: session.sessionId,
      baseModel: srcRun.baseModel,
      lora: srcRun.lora,
      userMetadata: input.userMetadata ?? {},
      createdAt: now,
      lastRequestTime: now,
    };
    const { requestId } = this.registerModel(run, async () => {
      await this.loadInto(modelId, rec, input.optimizer);
      await this.persistNewRun(run);
      return { kind: "json", value: { path: input.path, model_id: modelId, type: "load_weights" } };
    });
    this.creations.set(modelId, requestId);
    return { requestId, modelId };
  }

  private async loadInto(
    adapterId: string,
    rec: CheckpointRecord,
    optimizer: boolean,
  ): Promise<void> {
    if (optimizer && rec.kind !== "weights") {
      throw new UserError(
        `${tinkerPathOf(rec)} is a sampler checkpoint and has no optimizer state; load a weights/ checkpoint saved with save_state`,
      );
    }
    await this.engine.loadAdapter(
      adapterId,
      this.store.checkpointDir(rec.runId, rec.kind, rec.name),
      {
        optimizer,
      },
    );
  }

  // ---- checkpoints ---------------------------------------------------------------------------

  parseCheckpointPath(
    path: string,
    field: string,
  ): { runId: string; kind: CheckpointKind; name: string } {
    let parsed: ReturnType<typeof parseTinkerPath>;
    try {
      parsed = parseTinkerPath(path);
    } catch (err) {
      throw badRequest(`${field}: ${errorText(err)}`);
    }
    const kind: CheckpointKind =
      parsed.checkpointType === "training" ? "weights" : "sampler_weights";
    const name = validateCheckpointName(parsed.name, field);
    return { runId: parsed.trainingRunId, kind, name };
  }

  /**
   * A checkpoint by id; on a miss the run is re-read from disk, since another server process may
   * share the data directory.
   */
  async findCheckpoint(
    runId: string,
    kind: CheckpointKind,
    name: string,
  ): Promise<CheckpointRecord | undefined> {
    const id = `${kind}/${name}`;
    const rec = this.store.getCheckpoint(runId, id);
    if (rec) return rec;
    return (await this.store.reloadRun(runId)) ? this.store.getCheckpoint(runId, id) : undefined;
  }

  /** A checkpoint that must exist when the job runs (a failed future otherwise). */
  private async requireCheckpoint(
    runId: string,
    kind: CheckpointKind,
    name: string,
  ): Promise<CheckpointRecord> {
    const rec = await this.findCheckpoint(runId, kind, name);
    if (!rec) {
      throw new UserError(
        `checkpoint tinker://${runId}/${kind}/${name} does not exist; list them with list_checkpoints("${runId}")`,
      );
    }
    return rec;
  }

  /** A checkpoint that must exist now (404 otherwise). */
  async requireCheckpointNow(
    runId: string,
    kind: CheckpointKind,
    name: string,
  ): Promise<CheckpointRecord> {
    const rec = await this.findCheckpoint(runId, kind, name);
    if (!rec) {
      throw notFound(
        `checkpoint tinker://${runId}/${kind}/${name} does not exist; list them with list_checkpoints("${runId}")`,
      );
    }
    return rec;
  }

  /** A training run known here or written by another process sharing the data directory. */
  async findRun(runId: string): Promise<RunRecord | undefined> {
    const run = this.store.runs.get(runId);
    if (run) return run;
    return (await this.store.reloadRun(runId)) ? this.store.runs.get(runId) : undefined;
  }

  latestCheckpoint(runId: string, kind: CheckpointKind): CheckpointRecord | undefined {
    let best: CheckpointRecord | undefined;
    for (const c of this.store.checkpoints.get(runId)?.values() ?? []) {
      if (c.kind === kind && (!best || c.createdAt >= best.createdAt)) best = c;
    }
    return best;
  }

  async weightsInfo(path: string): Promise<Record<string, unknown>> {
    const src = this.parseCheckpointPath(path, "tinker_path");
    await this.requireCheckpointNow(src.runId, src.kind, src.name);
    const run = this.store.runs.get(src.runId);
    if (!run) throw notFound(`training run ${src.runId} is unknown`);
    return {
      base_model: run.baseModel,
      is_lora: true,
      lora_rank: run.lora.rank,
      train_unembed: run.lora.trainUnembed,
      train_mlp: run.lora.trainMlp,
      train_attn: run.lora.trainAttn,
    };
  }

  // ---- sampling ------------------------------------------------------------------------------

  async createSamplingSession(input: CreateSamplingSessionInput): Promise<string> {
    const session = this.requireSession(input.sessionId);
    const samplerId = `${session.sessionId}:sample:${input.samplingSessionSeqId}`;
    if (this.samplers.has(samplerId)) return samplerId;
    const live = await this.resolveSampler(
      samplerId,
      session.sessionId,
      input.baseModel,
      input.modelPath,
    );
    await this.store.putSampler(live.record);
    await this.linkSamplerToSession(live.record);
    this.samplers.set(samplerId, live);
    return samplerId;
  }

  private async resolveSampler(
    samplerId: string,
    sessionId: string,
    baseModel: string | undefined,
    modelPath: string | undefined,
  ): Promise<LiveSampler> {
    if (modelPath !== undefined) {
      const src = this.parseCheckpointPath(modelPath, "model_path");
      const rec = await this.requireCheckpointNow(src.runId, src.kind, src.name);
      const run = this.store.runs.get(rec.runId);
      if (!run) throw notFound(`training run ${rec.runId} of ${modelPath} is unknown`);
      if (baseModel !== undefined && baseModel !== run.baseModel) {
        throw badRequest(
          `model_path ${modelPath} was trained on ${run.baseModel}, not ${baseModel}; omit base_model`,
        );
      }
      const record: SamplerRecord = { samplerId, sessionId, baseModel: run.baseModel, modelPath };
      return {
        record,
        adapterKey: tinkerPathOf(rec),
        checkpointDir: this.store.checkpointDir(rec.runId, rec.kind, rec.name),
      };
    }
    if (baseModel === undefined) {
      throw badRequest(
        "create_sampling_session needs model_path (a tinker:// sampler path) or base_model",
      );
    }
    await this.requireBaseModel(baseModel);
    return { record: { samplerId, sessionId, baseModel } };
  }

  private async linkSamplerToSession(rec: SamplerRecord): Promise<void> {
    const id = rec.samplerId;
    await this.store.updateSession(rec.sessionId, (s) =>
      s && !s.samplerIds.includes(id) ? { ...s, samplerIds: [...s.samplerIds, id] } : undefined,
    );
  }

  /** `samplers/{id}`: the sampler's base model and weights path. */
  getSampler(samplerId: string): SamplerRecord {
    const live = this.samplers.get(samplerId);
    const rec = live?.record ?? this.store.samplers.get(samplerId);
    if (!rec) throw notFound(`unknown sampler ${JSON.stringify(samplerId)}`);
    return rec;
  }

  private async requireSampler(samplerId: string): Promise<LiveSampler> {
    const live = this.samplers.get(samplerId);
    if (live) return live;
    const rec = this.store.samplers.get(samplerId);
    if (rec) {
      // Durable sampler from before a restart: rebuild it from its record.
      const rebuilt = await this.resolveSampler(
        samplerId,
        rec.sessionId,
        rec.baseModel,
        rec.modelPath,
      );
      this.samplers.set(samplerId, rebuilt);
      return rebuilt;
    }
    throw notFound(
      `unknown sampling_session_id ${JSON.stringify(samplerId)}; create one with create_sampling_session (ephemeral samplers do not survive a server restart)`,
    );
  }

  async sample(input: SampleInput): Promise<string> {
    if (input.samplingSessionId !== undefined && input.seqId !== undefined) {
      const prior = this.sampleRequests.get(`${input.samplingSessionId}#${input.seqId}`);
      if (prior && this.futures.get(prior)) return prior;
    }
    if (this.sampling.load >= this.maxQueuedSamples) {
      throw new HttpError(
        429,
        `the server already has ${this.sampling.load} sample requests queued; retry shortly`,
        { "retry-after": "1" },
      );
    }
    let sampler: LiveSampler;
    if (input.samplingSessionId !== undefined) {
      sampler = await this.requireSampler(input.samplingSessionId);
    } else {
      sampler = await this.resolveSampler("direct", "", input.baseModel, input.modelPath);
    }
    const prompt = promptTokens(input);
    if (!Number.isInteger(input.numSamples) || input.numSamples < 1) {
      throw badRequest(`num_samples must be a positive integer, got ${input.numSamples}`);
    }
    const base = await this.requireBaseModel(sampler.record.baseModel);
    const held = this.heldMemory(base.name);
    checkSample(base, prompt.length, input.numSamples, input.params.maxTokens, held);
    const requestId = this.futures.start(() =>
      this.sampling.run(async () => {
        const run = (adapterId?: string) =>
          this.engine.sample({
            baseModel: sampler.record.baseModel,
            ...(adapterId === undefined ? {} : { adapterId }),
            prompt,
            numSamples: input.numSamples,
            params: input.params,
            promptLogprobs: input.promptLogprobs,
            topkPromptLogprobs: input.topkPromptLogprobs,
          });
        if (sampler.adapterKey === undefined) {
          return { kind: "sample", value: await run() } satisfies FutureResult;
        }
        const key = sampler.adapterKey;
        const dir = sampler.checkpointDir;
        if (!this.adapters.has(key)) {
          if (dir === undefined) {
            throw new UserError(
              `the ephemeral weights of sampler ${sampler.record.samplerId} were reclaimed (only the newest few per model are kept); call save_weights_and_get_sampling_client again`,
            );
          }
          this.adapters.register(key, async (adapterId) => {
            try {
              await this.engine.loadAdapter(adapterId, dir, { optimizer: false });
            } catch (err) {
              const path = sampler.record.modelPath;
              const src =
                path === undefined ? undefined : this.parseCheckpointPath(path, "model_path");
              if (src && !(await this.findCheckpoint(src.runId, src.kind, src.name))) {
                throw new UserError(
                  `the sampler weights ${path} were deleted (or their TTL passed); create a sampling client from an existing checkpoint`,
                  { cause: err },
                );
              }
              throw err;
            }
          });
        }
        const out = await this.adapters.use(key, (adapterId) => run(adapterId));
        if (!out)
          throw new UserError(
            `sampler weights ${key} were reclaimed; create a new sampling client`,
          );
        return { kind: "sample", value: out.value } satisfies FutureResult;
      }),
    );
    if (input.samplingSessionId !== undefined && input.seqId !== undefined) {
      this.sampleRequests.set(`${input.samplingSessionId}#${input.seqId}`, requestId);
    }
    return requestId;
  }

  /** Engine memory in use for admission checks: base weights of the models in use, live adapters. */
  private heldMemory(baseName: string): HeldMemory {
    const bases = new Set([baseName]);
    let bytes = 0;
    let adapters = 0;
    let samplers = 0;
    const count = (run: RunRecord | undefined): boolean => {
      const mem = run && this.baseInfo.get(run.baseModel)?.memory;
      if (!run || !mem) return false;
      bases.add(run.baseModel);
      bytes += adapterBytes(mem, run.lora);
      return true;
    };
    for (const m of this.models.values()) if (count(m.run)) adapters++;
    for (const runId of this.adapters.heldRuns()) if (count(this.store.runs.get(runId))) samplers++;
    for (const b of bases) bytes += this.baseInfo.get(b)?.memory?.weightBytes ?? 0;
    const parts = ["base weights"];
    if (adapters > 0) parts.push(`${adapters} loaded model(s)`);
    if (samplers > 0) parts.push(`${samplers} sampler adapter(s)`);
    const what = parts.join(", ");
    return { bytes, what, budgetBytes: this.engineMemoryBytes };
  }

  /** Drops bookkeeping of futures that expired. */
  sweep(): void {
    for (const [k, id] of this.sampleRequests)
      if (!this.futures.get(id)) this.sampleRequests.delete(k);
    for (const [k, id] of this.creations) {
      if (!this.futures.get(id) && !this.models.has(k)) this.creations.delete(k);
    }
  }

  /** Persists what only lives in memory (last request times) and stops accepting work. */
  async shutdown(): Promise<void> {
    for (const m of this.models.values()) {
      m.sequencer.close("the server is shutting down");
      if (this.store.runs.has(m.run.trainingRunId))
        await this.store.putRun(m.run).catch(() => undefined);
    }
    this.models.clear();
    this.adapters.clear();
  }

  /** Number of live models and samplers, for health reports. */
  stats(): { models: number; samplers: number; pendingFutures: number; sampleLoad: number } {
    return {
      models: this.models.size,
      samplers: this.samplers.size,
      pendingFutures: this.futures.pendingCount(),
      sampleLoad: this.sampling.load,
    };
  }
}

function promptTokens(input: SampleInput): Int32Array {
  try {
    return input.prompt.toInt32Array();
  } catch (err) {
    throw badRequest(`prompt: the local engine samples from text tokens only (${errorText(err)})`);
  }
}

function requireLossFn(name: string): LossFnType {
  if ((LOSS_FN_TYPES as readonly string[]).includes(name)) return name as LossFnType;
  throw badRequest(
    `unknown loss_fn ${JSON.stringify(name)}; use one of ${LOSS_FN_TYPES.join(", ")}`,
  );
}

function resolveLora(l: CreateModelInput["lora"]): ResolvedLoraConfig {
  if (!Number.isInteger(l.rank) || l.rank < 1 || l.rank > 1024) {
    throw badRequest(`lora_config.rank must be an integer in 1..1024, got ${l.rank}`);
  }
  if (!l.trainAttn && !l.trainMlp && !l.trainUnembed) {
    throw badRequest(
      "lora_config: at least one of train_attn, train_mlp, train_unembed must be true",
    );
  }
  return {
    rank: l.rank,
    seed: l.seed ?? Math.floor(Math.random() * 2 ** 31),
    trainUnembed: l.trainUnembed,
    trainMlp: l.trainMlp,
    trainAttn: l.trainAttn,
  };
}

const ADAM_WIRE_NAMES: Record<keyof AdamParams, string> = {
  learningRate: "learning_rate",
  beta1: "beta1",
  beta2: "beta2",
  eps: "eps",
  weightDecay: "weight_decay",
  gradClipNorm: "grad_clip_norm",
};

function resolveAdam(a: AdamParams): Required<AdamParams> {
  const out = { ...ADAM_DEFAULTS } as Required<AdamParams>;
  for (const key of Object.keys(ADAM_DEFAULTS) as Array<keyof AdamParams>) {
    const v = a[key];
    if (v === undefined) continue;
    if (typeof v !== "number") {
      const field = `adam_params.${ADAM_WIRE_NAMES[key]}`;
      throw new TinkerValidationError(`${field} must be a number, got ${String(v)}`, field);
    }
    out[key] = v;
  }
  validateAdamParams(out);
  return out;
}

function validateTtl(ttl: number | undefined): number | undefined {
  if (ttl === undefined) return undefined;
  if (!Number.isInteger(ttl) || ttl <= 0) {
    throw badRequest(
      `ttl_seconds must be a positive integer (or omitted for no expiry), got ${ttl}`,
    );
  }
  return ttl;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

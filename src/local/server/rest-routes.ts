import { randomBytes } from "node:crypto";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseAssignProject, parseSetTtl } from "./codec.js";
import { badRequest, conflict, HttpError, notFound } from "./http-error.js";
import { parseJsonBody, readBody, sendEmpty, sendJson } from "./http-io.js";
import { type CheckpointKind, validateCheckpointName } from "./names.js";
import type { RouteContext, Router } from "./router.js";
import type { TinkerService } from "./service.js";
import { type CheckpointRecord, checkpointId, type RunRecord, toCheckpointJson } from "./store.js";
import { tarSize, tarStream } from "./tar.js";

export interface RestRouteOptions {
  maxBodyBytes: number;
  /** How long an archive link stays valid. */
  archiveLinkTtlMs: number;
  /** The server's own base URL (archive links point at it). */
  baseUrl: () => string;
  prefix: string;
}

interface ArchiveLink {
  runId: string;
  checkpointId: string;
  expiresAt: number;
}

/** Training runs, checkpoints (list/get/delete/archive/publish/TTL), sessions. */
export function addRestRoutes(
  router: Router,
  service: TinkerService,
  opts: RestRouteOptions,
): void {
  const store = service.store;
  const links = new Map<string, ArchiveLink>();

  const checkpointOf = async (ctx: RouteContext): Promise<CheckpointRecord> => {
    const runId = ctx.params.run!;
    await requireRun(service, runId);
    const kind = ctx.params.kind!;
    if (kind !== "weights" && kind !== "sampler_weights") {
      throw badRequest(
        `checkpoint id must start with weights/ or sampler_weights/, got ${JSON.stringify(`${kind}/${ctx.params.name}`)}`,
      );
    }
    const name = validateCheckpointName(ctx.params.name, "checkpoint_id");
    return service.requireCheckpointNow(runId, kind as CheckpointKind, name);
  };

  router
    .add({
      method: "GET",
      pattern: "training_runs",
      handler: async (ctx) => {
        const { limit, offset } = paging(ctx.url, 20);
        await store.rescan();
        const projectId = ctx.url.searchParams.get("project_id");
        let runs = [...store.runs.values()];
        if (projectId)
          runs = runs.filter((r) => store.sessions.get(r.sessionId)?.projectId === projectId);
        runs.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
        sendJson(ctx.res, 200, {
          training_runs: runs.slice(offset, offset + limit).map((r) => runJson(service, r)),
          cursor: { offset, limit, total_count: runs.length },
        });
      },
    })
    .add({
      method: "GET",
      pattern: "training_runs/:run",
      handler: async (ctx) =>
        sendJson(ctx.res, 200, runJson(service, await requireRun(service, ctx.params.run!))),
    })
    .add({
      method: "GET",
      pattern: "training_runs/:run/checkpoints",
      handler: async (ctx) => {
        await requireRun(service, ctx.params.run!);
        await store.reloadRun(ctx.params.run!); // another process may share the data dir
        await store.sweepExpired();
        const cps = sortedCheckpoints(store.checkpoints.get(ctx.params.run!)?.values() ?? []);
        sendJson(ctx.res, 200, { checkpoints: cps.map(toCheckpointJson) });
      },
    })
    .add({
      method: "GET",
      pattern: "training_runs/:run/checkpoints/:kind/:name",
      handler: async (ctx) => sendJson(ctx.res, 200, toCheckpointJson(await checkpointOf(ctx))),
    })
    .add({
      method: "DELETE",
      pattern: "training_runs/:run/checkpoints/:kind/:name",
      handler: async (ctx) => {
        await store.deleteCheckpoint(await checkpointOf(ctx));
        sendEmpty(ctx.res);
      },
    })
    .add({
      method: "GET",
      pattern: "training_runs/:run/checkpoints/:kind/:name/archive",
      handler: async (ctx) => {
        const rec = await checkpointOf(ctx);
        const token = randomBytes(18).toString("base64url");
        const expiresAt = Date.now() + opts.archiveLinkTtlMs;
        links.set(token, { runId: rec.runId, checkpointId: checkpointId(rec), expiresAt });
        for (const [t, l] of links) if (l.expiresAt < Date.now()) links.delete(t);
        sendJson(ctx.res, 200, {
          url: `${opts.baseUrl()}${opts.prefix}/archives/${token}`,
          expires: new Date(expiresAt).toISOString(),
        });
      },
    })
    .add({
      method: "POST",
      pattern: "training_runs/:run/checkpoints/:kind/:name/publish",
      handler: async (ctx) => {
        const rec = await checkpointOf(ctx);
        if (rec.public) throw conflict(`checkpoint ${checkpointId(rec)} is already public`);
        await store.updateCheckpoint({ ...rec, public: true });
        sendEmpty(ctx.res);
      },
    })
    .add({
      method: "DELETE",
      pattern: "training_runs/:run/checkpoints/:kind/:name/publish",
      handler: async (ctx) => {
        const rec = await checkpointOf(ctx);
        if (!rec.public) throw conflict(`checkpoint ${checkpointId(rec)} is already private`);
        await store.updateCheckpoint({ ...rec, public: false });
        sendEmpty(ctx.res);
      },
    })
    .add({
      method: "PUT",
      pattern: "training_runs/:run/checkpoints/:kind/:name/ttl",
      handler: async (ctx) => {
        const rec = await checkpointOf(ctx);
        const { ttlSeconds } = parseSetTtl(
          parseJsonBody(await readBody(ctx.req, opts.maxBodyBytes)),
        );
        const next: CheckpointRecord = { ...rec };
        if (ttlSeconds === null) delete next.expiresAt;
        else next.expiresAt = new Date(Date.now() + ttlSeconds * 1000).toISOString();
        await store.updateCheckpoint(next);
        sendEmpty(ctx.res);
      },
    })
    .add({
      method: "GET",
      pattern: "checkpoints",
      handler: async (ctx) => {
        const { limit, offset } = paging(ctx.url, 100);
        await store.rescan();
        await store.sweepExpired();
        const all = sortedCheckpoints(
          [...store.checkpoints.values()].flatMap((m) => [...m.values()]),
        );
        sendJson(ctx.res, 200, {
          checkpoints: all.slice(offset, offset + limit).map(toCheckpointJson),
          cursor: { offset, limit, total_count: all.length },
        });
      },
    })
    .add({
      method: "GET",
      pattern: "sessions",
      handler: async (ctx) => {
        const { limit, offset } = paging(ctx.url, 20);
        const all = [...store.sessions.values()].sort((a, b) =>
          a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0,
        );
        sendJson(ctx.res, 200, {
          sessions: all.slice(offset, offset + limit).map((s) => s.sessionId),
        });
      },
    })
    .add({
      method: "GET",
      pattern: "sessions/:id",
      handler: async (ctx) => {
        const s = service.requireSession(ctx.params.id!);
        sendJson(ctx.res, 200, { training_run_ids: s.trainingRunIds, sampler_ids: s.samplerIds });
      },
    })
    .add({
      method: "PUT",
      pattern: "sessions/:id/project",
      handler: async (ctx) => {
        const { projectId } = parseAssignProject(
          parseJsonBody(await readBody(ctx.req, opts.maxBodyBytes)),
        );
        await service.setSessionProject(ctx.params.id!, projectId);
        sendEmpty(ctx.res);
      },
    })
    .add({
      method: "GET",
      pattern: "sessions/:id/trace_export",
      handler: async (ctx) => {
        service.requireSession(ctx.params.id!);
        sendJson(ctx.res, 200, {
          status: "failed",
          error: "trace export is not available on the local server",
        });
      },
    })
    .add({
      method: "GET",
      pattern: "archives/:token",
      public: true,
      handler: async (ctx) => {
        const link = links.get(ctx.params.token!);
        if (!link || link.expiresAt < Date.now()) {
          links.delete(ctx.params.token!);
          throw new HttpError(
            404,
            "this archive link is unknown or expired; request a new one with get_checkpoint_archive_url",
          );
        }
        const rec = store.getCheckpoint(link.runId, link.checkpointId);
        if (!rec) throw notFound(`checkpoint ${link.checkpointId} of ${link.runId} was deleted`);
        const files = await store.checkpointFiles(rec);
        const sizes = await Promise.all(files.map(async (f) => (await stat(f.path)).size));
        const filename = `${rec.runId}_${rec.kind}_${rec.name}.tar`.replace(
          /[^A-Za-z0-9_.-]/g,
          "_",
        );
        ctx.res.writeHead(200, {
          "content-type": "application/x-tar",
          "content-length": tarSize(sizes),
          "content-disposition": `attachment; filename="${filename}"`,
        });
        await pipeline(Readable.from(tarStream(files)), ctx.res);
      },
    });
}

async function requireRun(service: TinkerService, runId: string): Promise<RunRecord> {
  const run = await service.findRun(runId);
  if (!run) {
    throw notFound(
      `unknown training run ${JSON.stringify(runId)}; list runs with list_training_runs`,
    );
  }
  return run;
}

function runJson(service: TinkerService, r: RunRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {
    training_run_id: r.trainingRunId,
    base_model: r.baseModel,
    model_owner: "local",
    is_lora: true,
    corrupted: false,
    lora_rank: r.lora.rank,
    last_request_time: r.lastRequestTime,
    user_metadata: stringValues(r.userMetadata),
  };
  const lastTrain = service.latestCheckpoint(r.trainingRunId, "weights");
  const lastSampler = service.latestCheckpoint(r.trainingRunId, "sampler_weights");
  if (lastTrain) out.last_checkpoint = toCheckpointJson(lastTrain);
  if (lastSampler) out.last_sampler_checkpoint = toCheckpointJson(lastSampler);
  return out;
}

function stringValues(meta: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta ?? {})) {
    try {
      out[k] = typeof v === "string" ? v : JSON.stringify(v);
    } catch {
      out[k] = "(not serialisable)"; // written before metadata had limits
    }
  }
  return out;
}

function sortedCheckpoints(cps: Iterable<CheckpointRecord>): CheckpointRecord[] {
  return [...cps].sort((a, b) =>
    a.createdAt < b.createdAt
      ? 1
      : a.createdAt > b.createdAt
        ? -1
        : checkpointId(a) < checkpointId(b)
          ? -1
          : 1,
  );
}

function paging(url: URL, defaultLimit: number): { limit: number; offset: number } {
  const num = (name: string, def: number, min: number, max: number): number => {
    const raw = url.searchParams.get(name);
    if (raw === null || raw === "") return def;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) {
      throw badRequest(
        `query parameter ${name} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`,
      );
    }
    return v;
  };
  return {
    limit: num("limit", defaultLimit, 1, 10_000),
    offset: num("offset", 0, 0, Number.MAX_SAFE_INTEGER),
  };
}

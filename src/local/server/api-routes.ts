import { toWire } from "../../client/wire/responses.js";
import {
  decodeForwardBackwardBody,
  encodeFutureResult,
  parseCreateModel,
  parseCreateSamplingSession,
  parseCreateSession,
  parseForwardBackwardJson,
  parseLoadWeights,
  parseModelRef,
  parseOptimStep,
  parseRetrieveFuture,
  parseSample,
  parseSaveWeights,
  parseSaveWeightsForSampler,
  parseSessionRef,
  parseWeightsInfo,
} from "./codec.js";
import type { FutureStore } from "./futures.js";
import { HttpError } from "./http-error.js";
import {
  acceptsProtobuf,
  mediaType,
  parseJsonBody,
  readBody,
  sendBytes,
  sendJson,
} from "./http-io.js";
import type { ForwardBackwardInput } from "./requests.js";
import type { RouteContext, Router } from "./router.js";
import type { TinkerService } from "./service.js";

export interface ApiRouteOptions {
  /** Largest request body accepted as sent, in bytes (zstd bodies: before decompression). */
  maxBodyBytes: number;
  /** Largest decompressed size of a zstd body. */
  maxDecompressedBytes: number;
  /** How long `retrieve_future` holds a poll before answering `try_again`. */
  pollHoldMs: number;
  /** Results larger than this are announced with `complete_metadata` when the client allows it. */
  inlineResultBytes: number;
  /** Feature flags returned by `client/config`. */
  clientConfig: Record<string, unknown>;
}

/** The Tinker API endpoints (training, sampling, futures, sessions) on `router`. */
export function addApiRoutes(router: Router, service: TinkerService, opts: ApiRouteOptions): void {
  const json = async (ctx: RouteContext): Promise<unknown> =>
    parseJsonBody(await readBody(ctx.req, opts.maxBodyBytes));
  const future = (ctx: RouteContext, requestId: string, modelId?: string): void =>
    sendJson(ctx.res, 200, toWire.future({ requestId, modelId }));
  /** Parses a sequenced request; one that fails still uses up the seq_id its body names. */
  const sequenced = <T>(body: unknown, kind: string, parse: (body: unknown) => T): T => {
    try {
      return parse(body);
    } catch (err) {
      const ref =
        body !== null && typeof body === "object" ? (body as Record<string, unknown>) : {};
      service.consumeRejected(ref.model_id, ref.seq_id, kind, err);
      throw err;
    }
  };

  router
    .add({
      method: "POST",
      pattern: "client/config",
      handler: async (ctx) => {
        await json(ctx);
        sendJson(ctx.res, 200, opts.clientConfig);
      },
    })
    .add({
      method: "POST",
      pattern: "client/dynamic_config",
      handler: async (ctx) => {
        await json(ctx);
        sendJson(ctx.res, 200, { refresh_interval_sec: 300 });
      },
    })
    .add({
      method: "POST",
      pattern: "auth/token",
      handler: async () => {
        throw new HttpError(
          404,
          "JWT exchange is disabled on the local server (client/config says pjwt_auth_enabled=false); send the API key itself in X-API-Key",
        );
      },
    })
    .add({
      method: "POST",
      pattern: "create_session",
      handler: async (ctx) => {
        const sessionId = await service.createSession(parseCreateSession(await json(ctx)));
        sendJson(ctx.res, 200, { session_id: sessionId, type: "create_session" });
      },
    })
    .add({
      method: "POST",
      pattern: "session_heartbeat",
      handler: async (ctx) => {
        service.heartbeat(parseSessionRef(await json(ctx)).sessionId);
        sendJson(ctx.res, 200, toWire.sessionHeartbeat());
      },
    })
    .add({
      method: "GET",
      pattern: "get_server_capabilities",
      handler: async (ctx) => {
        const models = await service.listBaseModels();
        sendJson(ctx.res, 200, {
          supported_models: models.map((m) => ({
            model_name: m.name,
            max_context_length: m.maxContextLength,
          })),
        });
      },
    })
    .add({
      method: "GET",
      pattern: "healthz",
      public: true,
      handler: async (ctx) => sendJson(ctx.res, 200, { status: "ok" }),
    })
    .add({
      method: "POST",
      pattern: "create_model",
      handler: async (ctx) => {
        const { requestId, modelId } = await service.createModel(parseCreateModel(await json(ctx)));
        future(ctx, requestId, modelId);
      },
    })
    .add({
      method: "POST",
      pattern: "get_info",
      handler: async (ctx) => {
        sendJson(ctx.res, 200, await service.getInfo(parseModelRef(await json(ctx)).modelId));
      },
    })
    .add({
      method: "POST",
      pattern: "unload_model",
      handler: async (ctx) => {
        const { modelId } = parseModelRef(await json(ctx));
        future(ctx, service.unloadModel(modelId), modelId);
      },
    })
    .add({
      method: "POST",
      pattern: "forward_backward",
      handler: async (ctx) => {
        const input = await readForwardBackward(ctx, service, opts, false);
        future(ctx, service.forwardBackward(input), input.modelId);
      },
    })
    .add({
      method: "POST",
      pattern: "forward",
      handler: async (ctx) => {
        const input = await readForwardBackward(ctx, service, opts, true);
        future(ctx, service.forwardBackward(input), input.modelId);
      },
    })
    .add({
      method: "POST",
      pattern: "optim_step",
      handler: async (ctx) => {
        const input = sequenced(await json(ctx), "optim_step", parseOptimStep);
        future(ctx, service.optimStep(input), input.modelId);
      },
    })
    .add({
      method: "POST",
      pattern: "save_weights",
      handler: async (ctx) => {
        const input = sequenced(await json(ctx), "save_weights", parseSaveWeights);
        future(ctx, service.saveWeights(input), input.modelId);
      },
    })
    .add({
      method: "POST",
      pattern: "save_weights_for_sampler",
      handler: async (ctx) => {
        const input = sequenced(
          await json(ctx),
          "save_weights_for_sampler",
          parseSaveWeightsForSampler,
        );
        future(ctx, service.saveWeightsForSampler(input), input.modelId);
      },
    })
    .add({
      method: "POST",
      pattern: "load_weights",
      handler: async (ctx) => {
        const input = sequenced(await json(ctx), "load_weights", parseLoadWeights);
        const { requestId, modelId } = await service.loadWeights(input);
        future(ctx, requestId, modelId);
      },
    })
    .add({
      method: "POST",
      pattern: "weights_info",
      handler: async (ctx) => {
        sendJson(
          ctx.res,
          200,
          await service.weightsInfo(parseWeightsInfo(await json(ctx)).tinkerPath),
        );
      },
    })
    .add({
      method: "POST",
      pattern: "create_sampling_session",
      handler: async (ctx) => {
        const id = await service.createSamplingSession(parseCreateSamplingSession(await json(ctx)));
        sendJson(ctx.res, 200, toWire.createSamplingSession({ samplingSessionId: id }));
      },
    })
    .add({
      method: "POST",
      pattern: "asample",
      handler: async (ctx) => {
        future(ctx, await service.sample(parseSample(await json(ctx))));
      },
    })
    .add({
      method: "POST",
      pattern: "retrieve_future",
      handler: async (ctx) =>
        retrieveFuture(ctx, service.futures, parseRetrieveFuture(await json(ctx)), opts),
    })
    .add({
      method: "POST",
      pattern: "telemetry",
      handler: async (ctx) => {
        await readBody(ctx.req, opts.maxBodyBytes); // accepted and dropped: nothing leaves this machine
        sendJson(ctx.res, 200, toWire.telemetry());
      },
    })
    .add({
      method: "GET",
      pattern: "samplers/:id",
      handler: async (ctx) => {
        const rec = service.getSampler(ctx.params.id!);
        const body: Record<string, unknown> = {
          sampler_id: rec.samplerId,
          base_model: rec.baseModel,
        };
        if (rec.modelPath !== undefined) body.model_path = rec.modelPath;
        sendJson(ctx.res, 200, body);
      },
    });
}

async function readForwardBackward(
  ctx: RouteContext,
  service: TinkerService,
  opts: ApiRouteOptions,
  legacyForward: boolean,
): Promise<ForwardBackwardInput> {
  const body = await readBody(ctx.req, opts.maxBodyBytes);
  const encoding = (ctx.req.headers["content-encoding"] ?? "identity").toLowerCase().trim();
  if (mediaType(ctx.req) === "application/x-protobuf") {
    if (legacyForward) {
      throw new HttpError(
        415,
        "POST /api/v1/forward takes JSON; send protobuf to /api/v1/forward_backward with forward_only=true",
      );
    }
    return decodeForwardBackwardBody(
      body,
      encoding,
      opts.maxDecompressedBytes,
      (id) => {
        service.requireModel(id);
      },
      (ref, err) => service.consumeRejected(ref.modelId, ref.seqId ?? 0, "forward_backward", err),
    );
  }
  if (encoding !== "identity") {
    throw new HttpError(415, `Content-Encoding ${encoding} is only supported for protobuf bodies`);
  }
  const parsed = parseJsonBody(body);
  try {
    return parseForwardBackwardJson(parsed, legacyForward);
  } catch (err) {
    const ref =
      parsed !== null && typeof parsed === "object" ? (parsed as Record<string, unknown>) : {};
    const kind = legacyForward ? "forward" : "forward_backward";
    service.consumeRejected(ref.model_id, ref.seq_id, kind, err);
    throw err;
  }
}

async function retrieveFuture(
  ctx: RouteContext,
  futures: FutureStore,
  input: { requestId: string; allowMetadataOnly: boolean },
  opts: ApiRouteOptions,
): Promise<void> {
  const state = await futures.wait(input.requestId, opts.pollHoldMs, ctx.signal);
  if (ctx.signal.aborted) return;
  if (!state && futures.wasExpired(input.requestId)) {
    throw new HttpError(
      410,
      `the result of ${input.requestId} expired (results are kept for a while after their first retrieval); submit the request again`,
    );
  }
  if (!state) {
    throw new HttpError(
      404,
      `unknown request_id ${JSON.stringify(input.requestId)}: it was never issued by this server, or its result expired (results are kept for a while after first retrieval)`,
    );
  }
  if (state.status === "pending") {
    sendJson(
      ctx.res,
      200,
      toWire.tryAgain({
        requestId: input.requestId,
        queueState: "active",
        queueStateReason: undefined,
      }),
    );
    return;
  }
  if (state.status === "failed") {
    futures.markRetrieved(input.requestId);
    sendJson(
      ctx.res,
      200,
      toWire.requestFailed({ error: state.failure.message, category: state.failure.category }),
    );
    return;
  }
  const protobuf = acceptsProtobuf(ctx.req) && state.result.kind !== "json";
  const format = protobuf ? "proto" : "json";
  const bytes = futures.encodedBody(input.requestId, format, () =>
    encodeFutureResult(state.result, protobuf),
  );
  if (input.allowMetadataOnly && bytes.byteLength > opts.inlineResultBytes) {
    sendJson(ctx.res, 200, toWire.completeMetadata(bytes.byteLength));
    return;
  }
  futures.markRetrieved(input.requestId);
  sendBytes(ctx.res, 200, protobuf ? "application/x-protobuf" : "application/json", bytes);
}

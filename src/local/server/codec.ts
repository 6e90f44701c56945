/**
 * The server's side of the wire: turns request bodies into the service's inputs and results into
 * response bodies, using the client's wire codecs (`src/client/wire/`) so both ends share one
 * definition of the protocol.
 */
import { TinkerValidationError } from "../../client/errors.js";
import { forwardBackwardOutputToJson, sampleResponseToJson } from "../../client/wire/json.js";
import {
  decodeForwardBackwardRequest,
  encodeForwardBackwardOutput,
  encodeSampleResponse,
} from "../../client/wire/proto.js";
import { parseRequest } from "../../client/wire/requests.js";
import { ZstdOutputLimitError } from "../../client/wire/zstd.js";
import { MAX_NUM_SAMPLES } from "../engine/sampling/sampler.js";
import { decompressZstdBody, type LeadingRef, leadingRef, zstdPrefix } from "./decompress.js";
import { checkMetadata, checkShortString, checkTags } from "./free-form.js";
import type { FutureResult } from "./futures.js";
import { HttpError } from "./http-error.js";
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

const utf8 = new TextEncoder();

export function parseCreateSession(body: unknown): CreateSessionInput {
  const v = parseRequest("createSession", body, "create_session");
  checkTags(v.tags);
  checkMetadata(v.userMetadata, "user_metadata");
  checkShortString(v.sdkVersion, "sdk_version");
  checkShortString(v.projectId, "project_id");
  const out: CreateSessionInput = { tags: v.tags, userMetadata: v.userMetadata };
  if (v.sdkVersion !== undefined) out.sdkVersion = v.sdkVersion;
  if (v.projectId !== undefined) out.projectId = v.projectId;
  return out;
}

export function parseSessionRef(body: unknown): { sessionId: string } {
  return parseRequest("sessionHeartbeat", body, "session_heartbeat");
}

export function parseModelRef(body: unknown): { modelId: string } {
  return parseRequest("getInfo", body, "get_info / unload_model");
}

export function parseCreateModel(body: unknown): CreateModelInput {
  const v = parseRequest("createModel", body, "create_model");
  if (v.userMetadata !== undefined) checkMetadata(v.userMetadata, "user_metadata");
  const lora: CreateModelInput["lora"] = {
    rank: v.loraConfig.rank,
    trainUnembed: v.loraConfig.trainUnembed ?? true,
    trainMlp: v.loraConfig.trainMlp ?? true,
    trainAttn: v.loraConfig.trainAttn ?? true,
  };
  if (v.loraConfig.seed !== undefined) lora.seed = v.loraConfig.seed;
  const out: CreateModelInput = {
    sessionId: v.sessionId,
    modelSeqId: v.modelSeqId,
    baseModel: v.baseModel,
    lora,
  };
  if (v.userMetadata !== undefined) out.userMetadata = v.userMetadata;
  return out;
}

export function parseOptimStep(body: unknown): OptimStepInput {
  const v = parseRequest("optimStep", body, "optim_step");
  return { modelId: v.modelId, seqId: v.seqId, adam: v.adamParams };
}

export function parseSaveWeights(body: unknown): SaveWeightsInput {
  const v = parseRequest("saveWeights", body, "save_weights");
  if (v.path === undefined) {
    throw new TinkerValidationError(
      'save_weights needs path: the checkpoint name, e.g. "step-100"',
      "path",
    );
  }
  const out: SaveWeightsInput = {
    modelId: v.modelId,
    seqId: v.seqId,
    name: v.path,
    overwrite: v.overwrite,
  };
  if (v.ttlSeconds !== undefined) out.ttlSeconds = v.ttlSeconds;
  return out;
}

export function parseSaveWeightsForSampler(body: unknown): SaveWeightsForSamplerInput {
  const v = parseRequest("saveWeightsForSampler", body, "save_weights_for_sampler");
  const out: SaveWeightsForSamplerInput = { modelId: v.modelId, seqId: v.seqId };
  if (v.path !== undefined) out.name = v.path;
  if (v.samplingSessionSeqId !== undefined) out.samplingSessionSeqId = v.samplingSessionSeqId;
  if (v.ttlSeconds !== undefined) out.ttlSeconds = v.ttlSeconds;
  return out;
}

export function parseLoadWeights(body: unknown): LoadWeightsInput {
  const v = parseRequest("loadWeights", body, "load_weights");
  if (v.kind !== "load" && v.userMetadata !== undefined) {
    checkMetadata(v.userMetadata, "user_metadata");
  }
  if (v.kind === "load") {
    return { modelId: v.modelId, seqId: v.seqId, path: v.path, optimizer: v.optimizer };
  }
  const out: LoadWeightsInput = {
    sessionId: v.sessionId,
    modelSeqId: v.modelSeqId,
    path: v.path,
    optimizer: v.optimizer,
  };
  if (v.baseModel !== undefined) out.baseModel = v.baseModel;
  if (v.userMetadata !== undefined) out.userMetadata = v.userMetadata;
  return out;
}

export function parseWeightsInfo(body: unknown): { tinkerPath: string } {
  return parseRequest("weightsInfo", body, "weights_info");
}

export function parseCreateSamplingSession(body: unknown): CreateSamplingSessionInput {
  const v = parseRequest("createSamplingSession", body, "create_sampling_session");
  const out: CreateSamplingSessionInput = {
    sessionId: v.sessionId,
    samplingSessionSeqId: v.samplingSessionSeqId,
  };
  if (v.baseModel !== undefined) out.baseModel = v.baseModel;
  if (v.modelPath !== undefined) out.modelPath = v.modelPath;
  return out;
}

export function parseSample(body: unknown): SampleInput {
  // One rule and one message for every bad value, checked before the schema's generic ones.
  const n =
    body !== null && typeof body === "object"
      ? (body as { num_samples?: unknown }).num_samples
      : undefined;
  if (typeof n === "number" && !(Number.isInteger(n) && n >= 1 && n <= MAX_NUM_SAMPLES)) {
    throw new TinkerValidationError(
      `num_samples must be an integer in [1, ${MAX_NUM_SAMPLES}], got ${n}; ask for more samples in several requests`,
      "num_samples",
    );
  }
  const v = parseRequest("sample", body, "asample");
  const out: SampleInput = {
    numSamples: v.numSamples,
    prompt: v.prompt,
    params: v.samplingParams,
    promptLogprobs: v.promptLogprobs,
    topkPromptLogprobs: v.topkPromptLogprobs,
  };
  if (v.samplingSessionId !== undefined) out.samplingSessionId = v.samplingSessionId;
  if (v.seqId !== undefined) out.seqId = v.seqId;
  if (v.baseModel !== undefined) out.baseModel = v.baseModel;
  if (v.modelPath !== undefined) out.modelPath = v.modelPath;
  if (
    out.samplingSessionId === undefined &&
    out.baseModel === undefined &&
    out.modelPath === undefined
  ) {
    throw new TinkerValidationError(
      "asample needs sampling_session_id (from create_sampling_session), or base_model / model_path",
      "sampling_session_id",
    );
  }
  return out;
}

export function parseRetrieveFuture(body: unknown): {
  requestId: string;
  allowMetadataOnly: boolean;
} {
  return parseRequest("retrieveFuture", body, "retrieve_future");
}

/** The older JSON `forward_backward` / `forward` bodies. */
export function parseForwardBackwardJson(
  body: unknown,
  forwardOnly: boolean,
): ForwardBackwardInput {
  const v = forwardOnly
    ? parseRequest("forwardJson", body, "forward")
    : parseRequest("forwardBackwardJson", body, "forward_backward");
  return {
    modelId: v.modelId,
    seqId: v.seqId,
    data: v.data,
    lossFn: v.lossFn,
    lossFnConfig: v.lossFnConfig,
    forwardOnly,
  };
}

/**
 * A protobuf `forward_backward` body, zstd-compressed when `encoding` says so. `checkModel` sees
 * the model id before the body is decompressed in full (an unknown model costs no decompression);
 * `rejected` hears of a body refused after it named its model and seq_id, so that seq_id can be
 * used up.
 */
export async function decodeForwardBackwardBody(
  body: Uint8Array,
  encoding: string,
  maxDecompressedBytes: number,
  checkModel: (modelId: string) => void = () => undefined,
  rejected: (ref: LeadingRef, err: unknown) => void = () => undefined,
): Promise<ForwardBackwardInput> {
  if (encoding !== "zstd" && encoding !== "identity") {
    throw new HttpError(
      415,
      `unsupported Content-Encoding ${JSON.stringify(encoding)}; use zstd or none`,
    );
  }
  const head = encoding === "zstd" ? zstdPrefix(body, 1024) : body;
  const ref = head && leadingRef(head);
  if (ref) checkModel(ref.modelId);
  try {
    return decodeProtobufBody(
      encoding === "zstd" ? await decompress(body, maxDecompressedBytes) : body,
    );
  } catch (err) {
    if (ref) rejected(ref, err);
    throw err;
  }
}

async function decompress(body: Uint8Array, maxDecompressedBytes: number): Promise<Uint8Array> {
  try {
    return await decompressZstdBody(body, maxDecompressedBytes);
  } catch (err) {
    if (err instanceof ZstdOutputLimitError) {
      throw new HttpError(
        413,
        `${err.message}; send smaller batches (split the data into several forward_backward calls) or start the server with a larger limits.maxDecompressedBytes`,
      );
    }
    const why = err instanceof Error ? err.message : String(err);
    throw new HttpError(400, `could not decompress the zstd body: ${why}`);
  }
}

function decodeProtobufBody(bytes: Uint8Array): ForwardBackwardInput {
  const req = decodeForwardBackwardRequest(bytes);
  if (req.modelId === "") {
    throw new TinkerValidationError("forward_backward body has no model_id", "model_id");
  }
  return {
    modelId: req.modelId,
    seqId: req.seqId,
    data: req.data,
    lossFn: req.lossFn,
    lossFnConfig: req.lossFnConfig,
    forwardOnly: req.forwardOnly,
  };
}

/** The response body of a finished future, protobuf when asked for and available. */
export function encodeFutureResult(result: FutureResult, protobuf: boolean): Uint8Array {
  switch (result.kind) {
    case "json":
      return utf8.encode(JSON.stringify(result.value));
    case "forward_backward":
      return protobuf
        ? encodeForwardBackwardOutput(result.value)
        : utf8.encode(JSON.stringify(forwardBackwardOutputToJson(result.value)));
    case "sample":
      return protobuf
        ? encodeSampleResponse(result.value)
        : utf8.encode(JSON.stringify(sampleResponseToJson(result.value)));
  }
}

/** `PUT .../ttl`: a positive TTL, or null to keep the checkpoint forever. */
export function parseSetTtl(body: unknown): { ttlSeconds: number | null } {
  return parseRequest("setTtl", body, "checkpoint ttl");
}

export function parseAssignProject(body: unknown): { projectId: string } {
  const v = parseRequest("assignSessionProject", body, "session project");
  checkShortString(v.projectId, "project_id");
  return v;
}

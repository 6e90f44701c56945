/**
 * The public client surface of tinker-ts. (Errors and wire types are exported from
 * `./errors.js` and `./types/index.js` by the package root.)
 */

export type { ClientOptions, ResolvedConfig } from "./core/config.js";
export { DEFAULT_BASE_URL, resolveConfig, validateApiKey } from "./core/config.js";
export type { Logger, LogLevel } from "./core/logger.js";
export { redactText } from "./core/logger.js";
export { executeWithRetries, isRetryableError, type RetryLoopOptions } from "./core/retry.js";
export type { Timings } from "./core/timings.js";
export { DEFAULT_TIMINGS } from "./core/timings.js";
export { PROTOCOL_SDK_VERSION, TINKER_TS_VERSION } from "./core/version.js";
export type { CustomLossFn, CustomLossResult } from "./custom-loss.js";
export type {
  FutureEvents,
  FutureRequestType,
  QueueState,
  QueueStateEvent,
  ResultOptions,
} from "./future.js";
export { APIFuture, FutureExpiredError } from "./future.js";
export type { ServerFlags, TinkerPath } from "./internal/wire-bridge.js";
export type {
  AccessScope,
  ArchiveUrl,
  AuditLog,
  BillingUsage,
  Checkpoint,
  CheckpointsList,
  Cursor,
  RestCallOptions,
  SamplerDetails,
  SessionDetails,
  TrainingRun,
  TrainingRunsList,
  WeightsInfo,
  Whoami,
} from "./rest-client.js";
export { RestClient } from "./rest-client.js";
export type { SampleOptions, SamplerInfo, SamplingClientTarget } from "./sampling-client.js";
export { SamplingClient } from "./sampling-client.js";
export type {
  FromStateOptions,
  LoraTrainingOptions,
  ServerCapabilities,
  ServiceClientOptions,
} from "./service-client.js";
export { ServiceClient } from "./service-client.js";
export type { Tokenizer, TokenizerLoader } from "./tokenizer-hook.js";
export { resolveTokenizerId } from "./tokenizer-hook.js";
export type {
  CallOptions,
  LoadedCheckpoint,
  LoadStateOptions,
  SavedCheckpoint,
  SaveStateOptions,
  TrainingModelInfo,
} from "./training-client.js";
export { TrainingClient } from "./training-client.js";

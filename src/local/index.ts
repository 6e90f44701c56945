/**
 * `tinker-ts/local`: the embedded CPU engine and the Tinker-compatible HTTP server, for serving
 * the presets or a Hugging Face model folder yourself (`startLocalServer`), or driving the engine
 * directly (`createLocalEngine`). The client in the package root starts this server on its own
 * when no API key is set; import this entry only to run or configure it explicitly.
 *
 * Only what serving needs is exported: engine internals (model, kernels, training code) are not
 * part of the public API.
 */
export type {
  AdapterInfo,
  BaseModelInfo,
  EngineSampleRequest,
  LocalEngine,
  ResolvedLoraConfig,
} from "./engine/api.js";
export type { InMemoryModel } from "./engine/core/engine-core.js";
export type { ModelMemory } from "./engine/core/memory.js";
export { ModelFileError } from "./engine/io/errors.js";
export { SUPPORTED_MODEL_TYPES } from "./engine/io/hf-config.js";
export {
  type HfModelFolder,
  type LayerProjection,
  loadHfModelFolder,
  readHfConfig,
} from "./engine/io/hf-folder.js";
export {
  type ModelFiles,
  ModelNotAvailableError,
  missingModelFiles,
  type ResolveModelOptions,
  resolveModelFolder,
} from "./engine/io/hf-hub.js";
export {
  type PeftAdapter,
  type PeftAdapterSpec,
  type PeftTargetModule,
  readPeftAdapter,
  writePeftAdapter,
} from "./engine/io/peft.js";
export {
  getPreset,
  isPreset,
  listPresets,
  type ModelPreset,
  type PresetTokenizerOptions,
  QWEN3_TOKENIZER_REPO,
} from "./engine/io/presets.js";
export type { FloatDtype, LoadedTensor, TensorToWrite } from "./engine/io/safetensors.js";
export type { BlasSetting } from "./engine/kernels/blas/library.js";
export type { KernelsChoice, KernelsInfo } from "./engine/kernels/index.js";
export {
  type AdapterState,
  createLocalEngine,
  type LocalEngineHandle,
  type LocalEngineOptions,
} from "./engine/local-engine.js";
export type { ModelConfig } from "./engine/model/config.js";
export type { NamedTensor } from "./engine/model/weights.js";
export {
  type EmbeddedServerHandle,
  type EmbeddedServerOptions,
  ensureLocalServer,
} from "./server/embedded.js";
export {
  type LocalServer,
  type LocalServerLimits,
  type LocalServerOptions,
  startLocalServer,
} from "./server/server.js";

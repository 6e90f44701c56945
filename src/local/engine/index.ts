export type {
  AdapterInfo,
  BaseModelInfo,
  EngineSampleRequest,
  LocalEngine,
  ResolvedLoraConfig,
} from "./api.js";
export {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  OPTIMIZER_FILE,
  readAdapterFolder,
  writeAdapterFolder,
} from "./core/adapter-files.js";
export type { EngineCoreOptions, InMemoryModel } from "./core/engine-core.js";
export { EngineCore } from "./core/engine-core.js";
export {
  type CreateKernelsOptions,
  createJsKernels,
  createKernels,
  type KernelsChoice,
  type KernelsInfo,
} from "./kernels/index.js";
export type { AdamWParams, AttentionParams, GemmParams, Kernels } from "./kernels/types.js";
export {
  type AdapterState,
  createLocalEngine,
  type LocalEngineHandle,
  type LocalEngineOptions,
} from "./local-engine.js";
export type { ModelConfig } from "./model/config.js";
export { LORA_ALPHA, LoraAdapter } from "./model/lora.js";
export { SeededRng } from "./model/prng.js";
export { Transformer } from "./model/transformer.js";
export { initRandomWeights, loadBaseWeights, type NamedTensor } from "./model/weights.js";
export { type Decode, MAX_NUM_SAMPLES } from "./sampling/sampler.js";
export type { EngineDatum, EngineTensor } from "./train/datum.js";
export { LOSS_CONFIG_DEFAULTS } from "./train/losses.js";

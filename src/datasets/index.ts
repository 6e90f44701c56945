export {
  type BatchingOptions,
  type EpochBatch,
  numBatches,
  ShuffledBatches,
} from "./batching.js";
export {
  ConversationDatumDataset,
  type DatumRenderOptions,
  loadConversationFileDatums,
} from "./conversation-datums.js";
export {
  type Conversation,
  ConversationFileDataset,
  type ConversationFileOptions,
  parseConversationRow,
} from "./conversation-file.js";
export {
  DatasetFormatError,
  DatasetNotFoundError,
  type OnBadRow,
  type SkippedRow,
} from "./errors.js";
export {
  GSM8K_HUB,
  Gsm8k,
  type Gsm8kLoadOptions,
  type Gsm8kProblem,
  type Gsm8kSplit,
  parseGsm8kRow,
} from "./gsm8k.js";
export { type HubDataset, type HubDatasetOptions, loadHubDataset, selectDataFiles } from "./hub.js";
export {
  type JsonlReadOptions,
  type JsonlRow,
  JsonlStream,
  type RowParser,
  readJsonl,
  readJsonlStream,
} from "./jsonl.js";
export { deriveSeed, Prng, permutation, seededShuffle } from "./prng.js";

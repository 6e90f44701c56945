export {
  checkpointName,
  type RecipeBaseConfig,
  type RecipeResult,
  type TrainingStart,
} from "./common.js";
export {
  type EvalMetrics,
  type Evaluator,
  NllEvaluator,
  runEvaluators,
  type SamplingClientEvaluator,
  type TrainingClientEvaluator,
} from "./evaluators.js";
export {
  type DoneEvent,
  type EvaluationEvent,
  RecipeEmitter,
  type RecipeEvents,
  type RolloutsEvent,
  type StepEvent,
} from "./events.js";
export { attachProgress, type ProgressOptions } from "./progress.js";
export {
  type AdvantageOptions,
  assembleTrainingData,
  type ConstantGroupFilterResult,
  computeAdvantages,
  computeSampleTrainKL,
  computeTrajectoryMetrics,
  PARSE_ERROR_MASKED_METRIC,
  type RLDatum,
  type RLDatumSource,
  type RolloutStepSummary,
  type RolloutSummaryOptions,
  type RolloutSummaryRecord,
  removeConstantRewardGroups,
  rolloutSummaryRecords,
  type SampleTrainKL,
  type TrajectoryMetricsOptions,
  trajectoryToData,
} from "./rl/data-processing.js";
export {
  type ArithmeticRLOptions,
  arithmeticRL,
  customRL,
  firstBatches,
  type Gsm8kRLOptions,
  gsm8kRL,
  type RLDataSource,
  type RLDatasetContext,
} from "./rl/datasets.js";
export { type RLLoss, RLRecipe, type RLRecipeConfig } from "./rl/recipe.js";
export {
  CHECKPOINTS_FILE,
  type CheckpointRecord,
  CONFIG_FILE,
  type IfExists,
  type JsonlContents,
  METRICS_FILE,
  type MetricsRow,
  readJsonLines,
} from "./run-dir.js";
export { LR_SCHEDULES, type LrSchedule, lrMultiplier } from "./schedule.js";
export {
  type ChatDataOptions,
  conversationsJsonl,
  type HubConversationsOptions,
  hubConversations,
  mappedRows,
  type RowMapper,
  type SupervisedData,
  type SupervisedDataset,
  type SupervisedDatasetBuilder,
  type SupervisedDatasetContext,
} from "./supervised/dataset.js";
export { bitsPerByte, meanNll } from "./supervised/metrics.js";
export { SupervisedRecipe, type SupervisedRecipeConfig } from "./supervised/recipe.js";

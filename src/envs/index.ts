export {
  ArithmeticDataset,
  ArithmeticDatasetBuilder,
  type ArithmeticDatasetOptions,
  ArithmeticEnv,
} from "./arithmetic-env.js";
export {
  BOXED_QUESTION_SUFFIX,
  Gsm8kDatasetBuilder,
  type Gsm8kDatasetBuilderOptions,
  Gsm8kEnv,
  type Gsm8kEnvOptions,
  NUMERIC_BOXED_QUESTION_SUFFIX,
  standardFewshotPrefix,
} from "./gsm8k-env.js";
export { ListRLDataset, type ListRLDatasetOptions } from "./list-dataset.js";
export {
  boxedAnswerGrader,
  extractBoxed,
  extractGsm8kFinalAnswer,
  extractLooseAnswer,
  type GradeResult,
  type Grader,
  gradeAnswer,
  lenientAnswerGrader,
  type NumericAnswer,
  normalizeAnswer,
  readNumericAnswer,
  type SyncGrader,
} from "./math-grading.js";
export { ProblemEnv, type ProblemEnvOptions, ProblemGroupBuilder } from "./problem-env.js";
export {
  type EpisodeOptions,
  policyFromCompleter,
  rolloutGroup,
  runEpisode,
  type TokenPolicy,
} from "./rollouts.js";
export type {
  Action,
  Env,
  EnvGroupBuilder,
  GroupReward,
  InitialObservation,
  Logs,
  Metrics,
  Observation,
  RLDataset,
  RLDatasetBuilder,
  RLDatasets,
  SampledAction,
  StepExtra,
  StepResult,
  StopCondition,
  Trajectory,
  Transition,
} from "./types.js";
export { TrajectoryGroup } from "./types.js";

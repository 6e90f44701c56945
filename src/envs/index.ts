export {
  ArithmeticDataset,
  ArithmeticDatasetBuilder,
  type ArithmeticDatasetOptions,
  ArithmeticEnv,
} from "./arithmetic-env.js";
export {
  boxedAnswerGrader,
  type GradeResult,
  type Grader,
  lenientAnswerGrader,
  type SyncGrader,
} from "./graders.js";
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
export { extractBoxed, extractGsm8kFinalAnswer, extractLooseAnswer } from "./math-extract.js";
export {
  gradeAnswer,
  type NumericAnswer,
  normalizeAnswer,
  readNumericAnswer,
} from "./math-grading.js";
export type { Rational } from "./math-numbers.js";
export { ProblemEnv, type ProblemEnvOptions, ProblemGroupBuilder } from "./problem-env.js";
export {
  type EpisodeOptions,
  type PolicyCallContext,
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

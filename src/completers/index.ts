// `StopCondition` stays module-internal: the envs area exports the same alias from the root.
export * from "./tinker.js";
export type {
  MessageCompleter,
  SamplingClientLike,
  TokenCompleter,
  TokensWithLogprobs,
} from "./types.js";

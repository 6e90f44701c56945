/** Built-in server-side losses. All are sums over tokens (see the losses guide). */
export type LossFnType = "cross_entropy" | "importance_sampling" | "ppo" | "cispo" | "dro";

export const LOSS_FN_TYPES: readonly LossFnType[] = [
  "cross_entropy",
  "importance_sampling",
  "ppo",
  "cispo",
  "dro",
];

/** Scalars for the loss: `clip_low_threshold`, `clip_high_threshold` (ppo, cispo), `beta` (dro). */
export type LossFnConfig = Readonly<Record<string, number>>;

/** Sampling controls. Unset fields take the server defaults shown. */
export interface SamplingParams {
  /** Maximum tokens to generate. Always send it. */
  maxTokens?: number;
  /** Same seed, same tokens. */
  seed?: number;
  /** Stop strings, or stop token ids. */
  stop?: string | readonly string[] | readonly number[];
  /** Default 1. 0 means greedy. */
  temperature?: number;
  /** Default -1 (no limit). */
  topK?: number;
  /** Default 1. */
  topP?: number;
}

/** AdamW step parameters; defaults are the reference's. */
export interface AdamParams {
  /** Default 1e-4. */
  learningRate?: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.95. */
  beta2?: number;
  /** Default 1e-12. */
  eps?: number;
  /** Decoupled weight decay, default 0. */
  weightDecay?: number;
  /** Global gradient-norm clip; 0 (default) disables it. */
  gradClipNorm?: number;
}

export const ADAM_DEFAULTS: Readonly<Required<AdamParams>> = {
  learningRate: 1e-4,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-12,
  weightDecay: 0,
  gradClipNorm: 0,
};

/** Which parts of the model get LoRA adapters, and their rank. */
export interface LoraConfig {
  rank: number;
  seed?: number;
  /** Default true. */
  trainUnembed?: boolean;
  /** Default true. */
  trainMlp?: boolean;
  /** Default true. */
  trainAttn?: boolean;
}

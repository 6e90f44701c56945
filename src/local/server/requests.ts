import type { Datum } from "../../client/types/datum.js";
import type { ModelInput } from "../../client/types/model-input.js";
import type { AdamParams, LossFnConfig, SamplingParams } from "../../client/types/params.js";

/**
 * Requests as the service layer sees them: decoded from the wire (JSON or protobuf) by
 * `codec.ts`, camelCase, with wire defaults applied.
 */

export interface CreateSessionInput {
  tags: string[];
  userMetadata: Record<string, unknown>;
  sdkVersion?: string;
  projectId?: string;
}

export interface CreateModelInput {
  sessionId: string;
  modelSeqId: number;
  baseModel: string;
  userMetadata?: Record<string, unknown>;
  lora: {
    rank: number;
    seed?: number;
    trainUnembed: boolean;
    trainMlp: boolean;
    trainAttn: boolean;
  };
}

export interface ForwardBackwardInput {
  modelId: string;
  seqId?: number;
  data: Datum[];
  lossFn: string;
  lossFnConfig?: LossFnConfig;
  forwardOnly: boolean;
}

export interface OptimStepInput {
  modelId: string;
  seqId?: number;
  adam: AdamParams;
}

export interface SaveWeightsInput {
  modelId: string;
  seqId?: number;
  name: string;
  ttlSeconds?: number;
  overwrite: boolean;
}

export interface SaveWeightsForSamplerInput {
  modelId: string;
  seqId?: number;
  /** Named save; absent for the ephemeral form. */
  name?: string;
  /** Ephemeral form: the session's sampling counter slot. */
  samplingSessionSeqId?: number;
  ttlSeconds?: number;
}

export interface LoadWeightsInput {
  /** Existing-model form. */
  modelId?: string;
  seqId?: number;
  /** Create-via-load form. */
  sessionId?: string;
  modelSeqId?: number;
  baseModel?: string;
  userMetadata?: Record<string, unknown>;
  path: string;
  optimizer: boolean;
}

export interface CreateSamplingSessionInput {
  sessionId: string;
  samplingSessionSeqId: number;
  baseModel?: string;
  modelPath?: string;
}

export interface SampleInput {
  samplingSessionId?: string;
  seqId?: number;
  baseModel?: string;
  modelPath?: string;
  numSamples: number;
  prompt: ModelInput;
  params: SamplingParams;
  promptLogprobs: boolean;
  topkPromptLogprobs: number;
}

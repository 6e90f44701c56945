/**
 * Architecture of a decoder-only transformer the local engine can run. Qwen3 and Llama-3 differ in
 * QK-norm (Qwen3 normalises q and k per head before RoPE) and in defaults; everything else is shared.
 */
export interface ModelConfig {
  arch: "qwen3" | "llama";
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** True for Qwen3 (RMSNorm on q and k per head). */
  qkNorm: boolean;
  /** Llama-3.1 style RoPE frequency scaling, when the checkpoint has it. */
  ropeScaling?: {
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  };
  bosTokenId?: number;
  eosTokenIds: number[];
}

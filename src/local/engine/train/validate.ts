import { TinkerValidationError } from "../../../client/errors.js";
import { LOSS_FN_TYPES, type LossFnConfig, type LossFnType } from "../../../client/types/params.js";
import type { SeqSpan } from "../model/transformer.js";
import type { EngineDatum, EngineTensor } from "./datum.js";
import { LOSS_CONFIG_DEFAULTS, LOSS_CONFIG_KEYS, type LossInputs } from "./losses.js";

/** A validated batch, flattened over rows, ready for the model. */
export interface PreparedBatch {
  readonly tokens: Int32Array;
  readonly spans: SeqSpan[];
  /** Targets per row (padded to the batch's largest K with weight 0). */
  readonly targets: Int32Array;
  readonly loss: LossInputs;
  /** Per datum: row offset, length, and K of its targets (0 when 1-D). */
  readonly datums: ReadonlyArray<{ start: number; len: number; k2d: number }>;
}

const POLICY_REQUIRED = ["target_tokens", "logprobs", "advantages"] as const;
const ALLOWED_KEYS: Readonly<Record<LossFnType, readonly string[]>> = {
  cross_entropy: ["target_tokens", "weights"],
  importance_sampling: [...POLICY_REQUIRED, "weights"],
  ppo: [...POLICY_REQUIRED, "weights", "clip_low_threshold", "clip_high_threshold"],
  cispo: [...POLICY_REQUIRED, "weights", "clip_low_threshold", "clip_high_threshold"],
  dro: [...POLICY_REQUIRED, "weights"],
};

/**
 * Check every datum against the model and the loss, and build the flattened batch. Throws
 * `TinkerValidationError` naming the datum and field on the first problem; touches no state.
 */
export function prepareBatch(
  data: readonly EngineDatum[],
  lossFn: string,
  config: LossFnConfig | undefined,
  model: { vocabSize: number; maxContextLength: number },
): PreparedBatch {
  if (!(LOSS_FN_TYPES as readonly string[]).includes(lossFn)) {
    throw new TinkerValidationError(
      `unknown loss_fn "${lossFn}"; use one of ${LOSS_FN_TYPES.join(", ")}`,
      "loss_fn",
    );
  }
  const fn = lossFn as LossFnType;
  const cfg = resolveConfig(fn, config);
  if (data.length === 0)
    throw new TinkerValidationError("data is empty: pass at least one datum", "data");
  const V = model.vocabSize;

  let rows = 0;
  let kMax = 1;
  const datums: Array<{ start: number; len: number; k2d: number }> = [];
  for (let i = 0; i < data.length; i++) {
    const d = data[i]!;
    const where = `data[${i}]`;
    const N = d.tokens.length;
    if (N === 0)
      throw new TinkerValidationError(`${where}.model_input is empty`, `${where}.model_input`);
    if (N > model.maxContextLength) {
      throw new TinkerValidationError(
        `${where}.model_input has ${N} tokens, more than the model's context length ${model.maxContextLength}; truncate it`,
        `${where}.model_input`,
      );
    }
    checkTokenIds(d.tokens, V, `${where}.model_input`);
    const inputs = d.lossFnInputs;
    for (const key of Object.keys(inputs)) {
      if (!ALLOWED_KEYS[fn].includes(key)) {
        throw new TinkerValidationError(
          `${where}.loss_fn_inputs has "${key}", which ${fn} does not take (it takes ${ALLOWED_KEYS[fn].join(", ")}); remove it`,
          `${where}.loss_fn_inputs.${key}`,
        );
      }
    }
    for (const [key, t] of Object.entries(inputs)) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      if (t.data.length !== n) {
        const f = `${where}.loss_fn_inputs.${key}`;
        throw new TinkerValidationError(
          `${f} has ${t.data.length} values but shape [${t.shape.join(", ")}]`,
          f,
        );
      }
    }
    const required = fn === "cross_entropy" ? ["target_tokens", "weights"] : POLICY_REQUIRED;
    for (const key of required) {
      if (!inputs[key]) {
        throw new TinkerValidationError(
          `${where}.loss_fn_inputs is missing "${key}", required by ${fn}`,
          `${where}.loss_fn_inputs.${key}`,
        );
      }
    }
    const targets = inputs.target_tokens!;
    const tf = `${where}.loss_fn_inputs.target_tokens`;
    if (targets.dtype !== "int64")
      throw new TinkerValidationError(`${tf} must be an int64 tensor`, tf);
    if (
      targets.shape[0] !== N ||
      targets.shape.length > 2 ||
      (targets.shape.length === 2 && fn !== "cross_entropy")
    ) {
      throw new TinkerValidationError(
        `${tf} has shape [${targets.shape.join(", ")}], expected [${N}]${fn === "cross_entropy" ? ` or [${N}, K]` : ""} (one per model_input token)`,
        tf,
      );
    }
    checkTokenIds(targets.data, V, tf);
    const k2d = targets.shape.length === 2 ? targets.shape[1]! : 0;
    if (targets.shape.length === 2 && k2d < 1)
      throw new TinkerValidationError(`${tf} has K = 0 targets per position`, tf);
    kMax = Math.max(kMax, k2d);
    for (const key of Object.keys(inputs)) {
      if (key === "target_tokens") continue;
      const t = inputs[key]!;
      const f = `${where}.loss_fn_inputs.${key}`;
      const want = key === "weights" ? targets.shape : [N];
      if (t.shape.length !== want.length || t.shape.some((s, j) => s !== want[j])) {
        throw new TinkerValidationError(
          `${f} has shape [${t.shape.join(", ")}] but must match [${want.join(", ")}]${key === "weights" ? " (the shape of target_tokens)" : ""}`,
          f,
        );
      }
      checkFinite(t, f);
    }
    datums.push({ start: rows, len: N, k2d });
    rows += N;
  }

  const K = kMax;
  const tokens = new Int32Array(rows);
  const targets = new Int32Array(rows * K);
  const weights = new Float32Array(rows * K);
  const policy = fn !== "cross_entropy";
  const q = policy ? new Float32Array(rows) : null;
  const adv = policy ? new Float32Array(rows) : null;
  const clipped = fn === "ppo" || fn === "cispo";
  const lo = clipped ? new Float32Array(rows).fill(cfg.clip_low_threshold) : null;
  const hi = clipped ? new Float32Array(rows).fill(cfg.clip_high_threshold) : null;
  const spans: SeqSpan[] = [];
  for (let i = 0; i < data.length; i++) {
    const d = data[i]!;
    const { start, len, k2d } = datums[i]!;
    tokens.set(d.tokens, start);
    spans.push({ start, len });
    const kd = Math.max(k2d, 1);
    const t = d.lossFnInputs.target_tokens!.data;
    const w = d.lossFnInputs.weights?.data;
    for (let r = 0; r < len; r++) {
      for (let j = 0; j < kd; j++) {
        targets[(start + r) * K + j] = t[r * kd + j]!;
        weights[(start + r) * K + j] = w ? w[r * kd + j]! : 1;
      }
    }
    if (q && adv) {
      q.set(d.lossFnInputs.logprobs!.data, start);
      adv.set(d.lossFnInputs.advantages!.data, start);
    }
    if (lo && d.lossFnInputs.clip_low_threshold)
      lo.set(d.lossFnInputs.clip_low_threshold.data, start);
    if (hi && d.lossFnInputs.clip_high_threshold)
      hi.set(d.lossFnInputs.clip_high_threshold.data, start);
  }
  return {
    tokens,
    spans,
    targets,
    datums,
    loss: {
      lossFn: fn,
      k: K,
      weights,
      samplerLogprobs: q,
      advantages: adv,
      clipLow: lo,
      clipHigh: hi,
      beta: cfg.beta,
    },
  };
}

function resolveConfig(
  fn: LossFnType,
  config: LossFnConfig | undefined,
): typeof LOSS_CONFIG_DEFAULTS {
  const out = { ...LOSS_CONFIG_DEFAULTS };
  for (const [key, value] of Object.entries(config ?? {})) {
    if (!LOSS_CONFIG_KEYS[fn].includes(key)) {
      const allowed = LOSS_CONFIG_KEYS[fn];
      throw new TinkerValidationError(
        `loss_fn_config key "${key}" is not used by ${fn}${allowed.length ? ` (it takes ${allowed.join(", ")})` : " (it takes none)"}`,
        `loss_fn_config.${key}`,
      );
    }
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      throw new TinkerValidationError(
        `loss_fn_config.${key} must be a finite number >= 0, got ${value}`,
        `loss_fn_config.${key}`,
      );
    }
    (out as Record<string, number>)[key] = value;
  }
  if (out.clip_low_threshold > out.clip_high_threshold) {
    throw new TinkerValidationError(
      `loss_fn_config.clip_low_threshold (${out.clip_low_threshold}) exceeds clip_high_threshold (${out.clip_high_threshold})`,
      "loss_fn_config.clip_low_threshold",
    );
  }
  return out;
}

function checkTokenIds(ids: ArrayLike<number>, vocab: number, field: string): void {
  for (let j = 0; j < ids.length; j++) {
    const t = ids[j]!;
    if (!(t >= 0 && t < vocab) || !Number.isInteger(t)) {
      throw new TinkerValidationError(
        `${field}[${j}] = ${t} is not a token id of this model (vocabulary size ${vocab})`,
        field,
      );
    }
  }
}

function checkFinite(t: EngineTensor, field: string): void {
  const d = t.data;
  for (let j = 0; j < d.length; j++) {
    if (!Number.isFinite(d[j]!)) {
      throw new TinkerValidationError(
        `${field}[${j}] is ${d[j]}; every value must be a finite number`,
        field,
      );
    }
  }
}

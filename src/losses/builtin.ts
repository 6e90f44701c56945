/**
 * The built-in server-side losses: typed configs, validation before anything is sent, the
 * `loss_fn_inputs` each needs, and reference formulas of what the server computes per token.
 */
import { TinkerValidationError } from "../client/errors.js";
import type { Datum } from "../client/types/datum.js";
import { LOSS_FN_TYPES, type LossFnConfig, type LossFnType } from "../client/types/params.js";

/** A loss that takes no configuration. */
export type NoLossConfig = Readonly<Record<string, never>>;

/**
 * Clip range of the importance ratio `r = exp(lp - q)` for `ppo` and `cispo` (the bounds
 * themselves, not an epsilon).
 *
 * Defaults when omitted are the server's: the cookbook documents PPO as 0.8 / 1.2 and Tinker's
 * CISPO as one-sided 0.0 / 4.0; the local engine (`tinker-ts/local`) uses 0.8 / 1.2 for both.
 * Pass both values to get the same behaviour on every server.
 */
export interface ClipLossConfig {
  /** Lower bound of the ratio. ppo: in [0, 1]; cispo: >= 0. */
  readonly clipLowThreshold?: number;
  /** Upper bound of the ratio, above the lower one. ppo: >= 1. */
  readonly clipHighThreshold?: number;
}

/** `dro`: coefficient of the quadratic penalty on `lp - q`. The local engine's default is 0.05. */
export interface DroLossConfig {
  /** > 0. */
  readonly beta?: number;
}

/** The config type of each built-in loss. */
export interface BuiltinLossConfigs {
  readonly cross_entropy: NoLossConfig;
  readonly importance_sampling: NoLossConfig;
  readonly ppo: ClipLossConfig;
  readonly cispo: ClipLossConfig;
  readonly dro: DroLossConfig;
}

/** The typed config of loss `L`. */
export type LossConfigFor<L extends LossFnType> = BuiltinLossConfigs[L];

/**
 * What the local engine uses when a key is omitted; {@link builtinLossValue} uses these too.
 * (Tinker's CISPO default differs: 0.0 / 4.0.)
 */
export const BUILTIN_LOSS_DEFAULTS = {
  ppo: { clipLowThreshold: 0.8, clipHighThreshold: 1.2 },
  cispo: { clipLowThreshold: 0.8, clipHighThreshold: 1.2 },
  dro: { beta: 0.05 },
} as const;

/** A loss name and its wire config, ready for `forwardBackward(data, lossFn, lossFnConfig)`. */
export interface ResolvedLoss {
  readonly lossFn: LossFnType;
  /** Wire keys (`clip_low_threshold`, `clip_high_threshold`, `beta`); undefined when none given. */
  readonly lossFnConfig: LossFnConfig | undefined;
}

const CONFIG_KEYS: Readonly<Record<LossFnType, readonly string[]>> = {
  cross_entropy: [],
  importance_sampling: [],
  ppo: ["clipLowThreshold", "clipHighThreshold"],
  cispo: ["clipLowThreshold", "clipHighThreshold"],
  dro: ["beta"],
};

const WIRE_KEYS: Readonly<Record<string, string>> = {
  clipLowThreshold: "clip_low_threshold",
  clipHighThreshold: "clip_high_threshold",
  beta: "beta",
};

/** True when `name` is a built-in loss. */
export function isLossFnType(name: unknown): name is LossFnType {
  return typeof name === "string" && (LOSS_FN_TYPES as readonly string[]).includes(name);
}

function checkLossName(name: unknown, field = "lossFn"): LossFnType {
  if (!isLossFnType(name)) {
    throw new TinkerValidationError(
      `unknown loss "${String(name)}"; use one of ${LOSS_FN_TYPES.join(", ")}`,
      field,
    );
  }
  return name;
}

/**
 * Validate a built-in loss and its typed config and turn them into the wire form. Throws
 * `TinkerValidationError` (field `lossFn` or `lossFnConfig.<key>`) for an unknown name, an
 * unknown key, a non-finite value, or a clip range / beta that makes no sense.
 */
export function resolveLoss<L extends LossFnType>(
  name: L,
  config?: LossConfigFor<L>,
): ResolvedLoss {
  const lossFn = checkLossName(name);
  if (config === undefined || config === null) return { lossFn, lossFnConfig: undefined };
  if (typeof config !== "object" || Array.isArray(config)) {
    throw new TinkerValidationError(
      `lossFnConfig must be an object such as { clipLowThreshold: 0.8 }, got ${Array.isArray(config) ? "an array" : typeof config}`,
      "lossFnConfig",
    );
  }
  const allowed = CONFIG_KEYS[lossFn];
  const values: Record<string, number> = {};
  for (const [key, value] of Object.entries(config as Record<string, unknown>)) {
    const field = `lossFnConfig.${key}`;
    if (!allowed.includes(key)) {
      const camel = Object.entries(WIRE_KEYS).find(([, wire]) => wire === key)?.[0];
      const hint =
        camel && allowed.includes(camel)
          ? `; write it as ${camel} (the wire name is set for you)`
          : "";
      throw new TinkerValidationError(
        allowed.length === 0
          ? `${lossFn} takes no config, but "${key}" was given; remove lossFnConfig`
          : `${lossFn} has no config key "${key}"; it accepts ${allowed.join(", ")}${hint}`,
        field,
      );
    }
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new TinkerValidationError(
        `${field} must be a finite number, got ${typeof value === "number" ? value : JSON.stringify(value)}`,
        field,
      );
    }
    values[key] = value;
  }
  if (lossFn === "ppo" || lossFn === "cispo") checkClip(lossFn, values);
  if (lossFn === "dro" && values.beta !== undefined && values.beta <= 0) {
    throw new TinkerValidationError(
      `lossFnConfig.beta must be > 0 (the weight of the penalty on lp - q), got ${values.beta}; omit it for the server default`,
      "lossFnConfig.beta",
    );
  }
  const entries = Object.entries(values);
  if (entries.length === 0) return { lossFn, lossFnConfig: undefined };
  const wire: Record<string, number> = {};
  for (const [k, v] of entries) wire[WIRE_KEYS[k]!] = v;
  return { lossFn, lossFnConfig: wire };
}

function checkClip(lossFn: "ppo" | "cispo", v: Record<string, number>): void {
  const lo = v.clipLowThreshold;
  const hi = v.clipHighThreshold;
  const loField = "lossFnConfig.clipLowThreshold";
  const hiField = "lossFnConfig.clipHighThreshold";
  if (lo !== undefined && lo < 0) {
    throw new TinkerValidationError(
      `${loField} is a bound on the ratio exp(lp - q), which is never negative; got ${lo}, use a value >= 0`,
      loField,
    );
  }
  if (lossFn === "ppo" && lo !== undefined && lo > 1) {
    throw new TinkerValidationError(
      `${loField} must be <= 1 for ppo (the clip range must contain the on-policy ratio 1), got ${lo}; e.g. 0.8`,
      loField,
    );
  }
  if (lossFn === "ppo" && hi !== undefined && hi < 1) {
    throw new TinkerValidationError(
      `${hiField} must be >= 1 for ppo (the clip range must contain the on-policy ratio 1), got ${hi}; e.g. 1.2`,
      hiField,
    );
  }
  if (hi !== undefined && hi <= 0) {
    throw new TinkerValidationError(`${hiField} must be > 0, got ${hi}`, hiField);
  }
  if (lo !== undefined && hi !== undefined && lo >= hi) {
    throw new TinkerValidationError(
      `${loField} (${lo}) must be below ${hiField} (${hi}); swap them or widen the range`,
      loField,
    );
  }
}

const POLICY_REQUIRED = ["target_tokens", "logprobs", "advantages"] as const;

/** The `loss_fn_inputs` keys every datum must carry for loss `name`. */
export function requiredLossInputs(name: LossFnType): readonly string[] {
  const fn = checkLossName(name);
  return fn === "cross_entropy" ? ["target_tokens", "weights"] : POLICY_REQUIRED;
}

/**
 * Every `loss_fn_inputs` key loss `name` accepts: the required ones, plus an optional per-token
 * `weights` multiplier for the policy losses and per-token clip bounds for ppo / cispo.
 * Anything else (e.g. RL's `mask`) is rejected by the server.
 */
export function acceptedLossInputs(name: LossFnType): readonly string[] {
  const fn = checkLossName(name);
  if (fn === "cross_entropy") return ["target_tokens", "weights"];
  if (fn === "ppo" || fn === "cispo") {
    return [...POLICY_REQUIRED, "weights", "clip_low_threshold", "clip_high_threshold"];
  }
  return [...POLICY_REQUIRED, "weights"];
}

/**
 * Check that every datum has the inputs loss `name` needs, no input it does not accept, and one
 * value per model-input position. Throws `TinkerValidationError` with field
 * `data[i].lossFnInputs.<key>` naming the datum and the key.
 */
export function checkDatumsForLoss(name: LossFnType, data: readonly Datum[]): void {
  const fn = checkLossName(name);
  const required = requiredLossInputs(fn);
  const accepted = acceptedLossInputs(fn);
  for (let i = 0; i < data.length; i++) {
    const inputs = data[i]!.lossFnInputs;
    for (const key of required) {
      if (!inputs[key]) {
        throw new TinkerValidationError(
          `data[${i}] has no loss input "${key}", which ${fn} needs (it needs ${required.join(", ")})`,
          `data[${i}].lossFnInputs.${key}`,
        );
      }
    }
    let n: number | undefined;
    try {
      n = data[i]!.modelInput.length;
    } catch {
      n = undefined; // an image chunk without expectedTokens: the server knows its length
    }
    for (const [key, t] of Object.entries(inputs)) {
      const field = `data[${i}].lossFnInputs.${key}`;
      if (!accepted.includes(key)) {
        throw new TinkerValidationError(
          `data[${i}] has loss input "${key}", which ${fn} does not accept (it accepts ${accepted.join(", ")}); remove it before sending`,
          field,
        );
      }
      if (n !== undefined && t.shape[0] !== n) {
        throw new TinkerValidationError(
          `data[${i}].lossFnInputs.${key} has ${t.shape[0]} positions but the model input has ${n} tokens; give one value per input position (targets are shifted by one)`,
          field,
        );
      }
    }
  }
}

/** One target position: learner logprob `lp`, sampler logprob `q`, advantage `adv`, weight `w`. */
export interface LossToken {
  readonly lp: number;
  /** Sampler logprob (policy losses). */
  readonly q?: number;
  /** Advantage (policy losses). */
  readonly adv?: number;
  /** Weight: the cross-entropy weight, or the policy losses' optional multiplier. Default 1. */
  readonly w?: number;
}

/** A per-token loss term and its derivative with respect to `lp`. */
export interface LossValue {
  readonly loss: number;
  readonly grad: number;
}

/**
 * The per-token term of a built-in loss (the server sums these over all tokens of the batch),
 * with `r = exp(lp - q)`:
 *
 * - cross_entropy:       -w lp
 * - importance_sampling: -w r A
 * - ppo:                 -w min(r A, clip(r, lo, hi) A)
 * - cispo:               -w stopgrad(clip(r, lo, hi)) lp A
 * - dro:                 -w (lp A - beta/2 (lp - q)^2)   (as the local engine defines it)
 *
 * Omitted config values take {@link BUILTIN_LOSS_DEFAULTS}. A reference for tests, computed in
 * float64; not what trains anything.
 */
export function builtinLossValue<L extends LossFnType>(
  name: L,
  config: LossConfigFor<L> | undefined,
  token: LossToken,
): LossValue {
  const fn = checkLossName(name);
  const w = token.w ?? 1;
  const lp = token.lp;
  if (fn === "cross_entropy") return { loss: -w * lp, grad: -w };
  if (token.q === undefined || token.adv === undefined) {
    throw new TinkerValidationError(
      `${fn} needs the sampler logprob q and the advantage adv of each token`,
      token.q === undefined ? "q" : "adv",
    );
  }
  const a = token.adv;
  const r = Math.exp(lp - token.q);
  switch (fn) {
    case "importance_sampling":
      return { loss: -w * r * a, grad: -w * r * a };
    case "ppo": {
      const c = config as ClipLossConfig | undefined;
      const lo = c?.clipLowThreshold ?? BUILTIN_LOSS_DEFAULTS.ppo.clipLowThreshold;
      const hi = c?.clipHighThreshold ?? BUILTIN_LOSS_DEFAULTS.ppo.clipHighThreshold;
      const unclipped = r * a;
      const clipped = Math.min(Math.max(r, lo), hi) * a;
      // Where the clipped branch is the minimum it is constant in lp.
      return unclipped <= clipped
        ? { loss: -w * unclipped, grad: -w * unclipped }
        : { loss: -w * clipped, grad: 0 };
    }
    case "cispo": {
      const c = config as ClipLossConfig | undefined;
      const lo = c?.clipLowThreshold ?? BUILTIN_LOSS_DEFAULTS.cispo.clipLowThreshold;
      const hi = c?.clipHighThreshold ?? BUILTIN_LOSS_DEFAULTS.cispo.clipHighThreshold;
      const rc = Math.min(Math.max(r, lo), hi);
      return { loss: -w * rc * lp * a, grad: -w * rc * a };
    }
    case "dro": {
      const beta = (config as DroLossConfig | undefined)?.beta ?? BUILTIN_LOSS_DEFAULTS.dro.beta;
      const d = lp - token.q;
      return { loss: -w * (lp * a - 0.5 * beta * d * d), grad: -w * (a - beta * d) };
    }
  }
}

/**
 * {@link builtinLossValue} summed over a batch: `logprobs[i]` are the learner logprobs of datum
 * i's targets (e.g. `loss_fn_outputs[i].logprobs` of a `forward`). Returns the loss sum the server
 * reports as `loss:sum`, and the per-token gradients.
 */
export function builtinLossOnData<L extends LossFnType>(
  name: L,
  config: LossConfigFor<L> | undefined,
  data: readonly Datum[],
  logprobs: readonly ArrayLike<number>[],
): { loss: number; grads: Float64Array[] } {
  const fn = checkLossName(name);
  checkDatumsForLoss(fn, data);
  if (logprobs.length !== data.length) {
    throw new TinkerValidationError(
      `logprobs has ${logprobs.length} arrays for ${data.length} datums; pass one per datum`,
      "logprobs",
    );
  }
  let loss = 0;
  const grads = data.map((d, i) => {
    const lp = logprobs[i]!;
    const inputs = d.lossFnInputs;
    const w = inputs.weights?.toDense();
    const q = inputs.logprobs?.toDense();
    const adv = inputs.advantages?.toDense();
    const lo = inputs.clip_low_threshold?.toDense();
    const hi = inputs.clip_high_threshold?.toDense();
    if (lp.length !== inputs.target_tokens!.size) {
      throw new TinkerValidationError(
        `logprobs[${i}] has ${lp.length} values but datum ${i} has ${inputs.target_tokens!.size} targets`,
        `logprobs[${i}]`,
      );
    }
    const g = new Float64Array(lp.length);
    for (let j = 0; j < lp.length; j++) {
      let cfg = config;
      if (lo || hi) {
        const c = (config ?? {}) as ClipLossConfig;
        cfg = {
          clipLowThreshold: lo ? lo[j]! : c.clipLowThreshold,
          clipHighThreshold: hi ? hi[j]! : c.clipHighThreshold,
        } as LossConfigFor<L>;
      }
      const v = builtinLossValue(fn as L, cfg, {
        lp: lp[j]!,
        ...(q ? { q: q[j]! } : {}),
        ...(adv ? { adv: adv[j]! } : {}),
        ...(w ? { w: w[j]! } : {}),
      });
      loss += v.loss;
      g[j] = v.grad;
    }
    return g;
  });
  return { loss, grads };
}

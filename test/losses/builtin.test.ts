import { describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { makeDatum } from "../../src/client/types/datum.js";
import { LOSS_CONFIG_DEFAULTS, LOSS_CONFIG_KEYS } from "../../src/local/engine/train/losses.js";
import {
  acceptedLossInputs,
  BUILTIN_LOSS_DEFAULTS,
  builtinLossOnData,
  builtinLossValue,
  checkDatumsForLoss,
  LOSS_FN_TYPES,
  type LossConfigFor,
  type LossFnType,
  requiredLossInputs,
  resolveLoss,
} from "../../src/losses/index.js";

function validationError(fn: () => unknown): TinkerValidationError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TinkerValidationError);
    return e as TinkerValidationError;
  }
  throw new Error("expected a TinkerValidationError");
}

describe("resolveLoss", () => {
  it("maps typed configs to wire keys and leaves an empty config undefined", () => {
    expect(resolveLoss("cross_entropy")).toEqual({
      lossFn: "cross_entropy",
      lossFnConfig: undefined,
    });
    expect(resolveLoss("importance_sampling", {})).toEqual({
      lossFn: "importance_sampling",
      lossFnConfig: undefined,
    });
    expect(resolveLoss("ppo", { clipLowThreshold: 0.7, clipHighThreshold: 1.3 })).toEqual({
      lossFn: "ppo",
      lossFnConfig: { clip_low_threshold: 0.7, clip_high_threshold: 1.3 },
    });
    expect(
      resolveLoss("cispo", { clipLowThreshold: 0, clipHighThreshold: 4 }).lossFnConfig,
    ).toEqual({ clip_low_threshold: 0, clip_high_threshold: 4 });
    expect(resolveLoss("cispo", { clipHighThreshold: 5 }).lossFnConfig).toEqual({
      clip_high_threshold: 5,
    });
    expect(resolveLoss("dro", { beta: 0.1 }).lossFnConfig).toEqual({ beta: 0.1 });
    expect(resolveLoss("ppo", { clipLowThreshold: undefined }).lossFnConfig).toBeUndefined();
  });

  it("rejects an unknown loss, listing the names", () => {
    const e = validationError(() => resolveLoss("grpo" as LossFnType));
    expect(e.field).toBe("lossFn");
    for (const name of LOSS_FN_TYPES) expect(e.message).toContain(name);
  });

  it("rejects unknown config keys, naming the key and the accepted ones", () => {
    const e1 = validationError(() => resolveLoss("ppo", { clipLow: 0.8 } as never));
    expect(e1.field).toBe("lossFnConfig.clipLow");
    expect(e1.message).toMatch(/clipLowThreshold, clipHighThreshold/);
    const e2 = validationError(() => resolveLoss("ppo", { clip_low_threshold: 0.8 } as never));
    expect(e2.message).toMatch(/write it as clipLowThreshold/);
    const e3 = validationError(() => resolveLoss("cross_entropy", { beta: 1 } as never));
    expect(e3.field).toBe("lossFnConfig.beta");
    expect(e3.message).toMatch(/takes no config/);
    const e4 = validationError(() => resolveLoss("dro", { clipLowThreshold: 0.8 } as never));
    expect(e4.message).toMatch(/accepts beta/);
    expect(validationError(() => resolveLoss("ppo", [] as never)).field).toBe("lossFnConfig");
  });

  it("rejects non-finite values and senseless clip ranges / beta", () => {
    const cases: Array<[() => unknown, string, RegExp]> = [
      [() => resolveLoss("ppo", { clipLowThreshold: Number.NaN }), "clipLowThreshold", /finite/],
      [() => resolveLoss("cispo", { clipHighThreshold: Infinity }), "clipHighThreshold", /finite/],
      [() => resolveLoss("dro", { beta: "0.1" as never }), "beta", /finite/],
      [() => resolveLoss("ppo", { clipLowThreshold: -0.1 }), "clipLowThreshold", />= 0/],
      [() => resolveLoss("cispo", { clipLowThreshold: -1 }), "clipLowThreshold", />= 0/],
      [() => resolveLoss("ppo", { clipLowThreshold: 1.1 }), "clipLowThreshold", /<= 1/],
      [() => resolveLoss("ppo", { clipHighThreshold: 0.9 }), "clipHighThreshold", />= 1/],
      [() => resolveLoss("cispo", { clipHighThreshold: 0 }), "clipHighThreshold", /> 0/],
      [
        () => resolveLoss("ppo", { clipLowThreshold: 1, clipHighThreshold: 1 }),
        "clipLowThreshold",
        /must be below/,
      ],
      [
        () => resolveLoss("cispo", { clipLowThreshold: 3, clipHighThreshold: 2 }),
        "clipLowThreshold",
        /swap them/,
      ],
      [() => resolveLoss("dro", { beta: 0 }), "beta", /> 0/],
      [() => resolveLoss("dro", { beta: -1 }), "beta", /> 0/],
    ];
    for (const [fn, key, re] of cases) {
      const e = validationError(fn);
      expect(e.field).toBe(`lossFnConfig.${key}`);
      expect(e.message).toMatch(re);
    }
    // CISPO may clip from one side only (low 0).
    expect(() => resolveLoss("cispo", { clipLowThreshold: 0, clipHighThreshold: 4 })).not.toThrow();
  });

  it("documents the local engine's defaults and config keys correctly", () => {
    expect(BUILTIN_LOSS_DEFAULTS.ppo).toEqual({
      clipLowThreshold: LOSS_CONFIG_DEFAULTS.clip_low_threshold,
      clipHighThreshold: LOSS_CONFIG_DEFAULTS.clip_high_threshold,
    });
    expect(BUILTIN_LOSS_DEFAULTS.cispo).toEqual(BUILTIN_LOSS_DEFAULTS.ppo);
    expect(BUILTIN_LOSS_DEFAULTS.dro.beta).toBe(LOSS_CONFIG_DEFAULTS.beta);
    const full: Partial<Record<LossFnType, LossConfigFor<LossFnType>>> = {
      ppo: { clipLowThreshold: 0.8, clipHighThreshold: 1.2 },
      cispo: { clipLowThreshold: 0.8, clipHighThreshold: 1.2 },
      dro: { beta: 0.05 },
    };
    for (const name of LOSS_FN_TYPES) {
      const keys = Object.keys(resolveLoss(name, full[name]).lossFnConfig ?? {});
      expect(keys).toEqual(LOSS_CONFIG_KEYS[name]);
    }
  });
});

describe("loss inputs", () => {
  const ce = makeDatum([1, 2, 3], { target_tokens: [2, 3, 4], weights: [1, 1, 1] });
  const rl = makeDatum([1, 2, 3], {
    target_tokens: [2, 3, 4],
    logprobs: [0, -1, -2],
    advantages: [0, 1, 1],
  });

  it("names the required keys", () => {
    expect(requiredLossInputs("cross_entropy")).toEqual(["target_tokens", "weights"]);
    for (const name of ["importance_sampling", "ppo", "cispo", "dro"] as const) {
      expect(requiredLossInputs(name)).toEqual(["target_tokens", "logprobs", "advantages"]);
    }
    expect(acceptedLossInputs("ppo")).toContain("clip_low_threshold");
    expect(acceptedLossInputs("importance_sampling")).not.toContain("mask");
  });

  it("accepts well-formed datums", () => {
    expect(() => checkDatumsForLoss("cross_entropy", [ce, ce])).not.toThrow();
    expect(() => checkDatumsForLoss("ppo", [rl])).not.toThrow();
  });

  it("names the datum index and the missing key", () => {
    const e = validationError(() => checkDatumsForLoss("importance_sampling", [rl, ce]));
    expect(e.field).toBe("data[1].lossFnInputs.logprobs");
    expect(e.message).toMatch(/data\[1\] has no loss input "logprobs"/);
    const e2 = validationError(() => checkDatumsForLoss("cross_entropy", [ce, rl]));
    expect(e2.field).toBe("data[1].lossFnInputs.weights");
  });

  it("rejects keys the loss does not take (RL's mask) and misaligned lengths", () => {
    const masked = makeDatum([1, 2, 3], {
      target_tokens: [2, 3, 4],
      logprobs: [0, -1, -2],
      advantages: [0, 1, 1],
      mask: [0, 1, 1],
    });
    const e = validationError(() => checkDatumsForLoss("ppo", [rl, masked]));
    expect(e.field).toBe("data[1].lossFnInputs.mask");
    expect(e.message).toMatch(/remove it/);
    const short = makeDatum([1, 2, 3], {
      target_tokens: [2, 3, 4],
      logprobs: [0, -1],
      advantages: [0, 1, 1],
    });
    expect(validationError(() => checkDatumsForLoss("ppo", [short])).field).toBe(
      "data[0].lossFnInputs.logprobs",
    );
  });
});

describe("builtinLossValue", () => {
  const q = Math.log(0.5);

  it("computes the per-token formulas", () => {
    expect(builtinLossValue("cross_entropy", undefined, { lp: -2, w: 0.5 })).toEqual({
      loss: 1,
      grad: -0.5,
    });
    // r = exp(lp - q) = 1.5 at lp = log(0.75)
    const lp = Math.log(0.75);
    const is = builtinLossValue("importance_sampling", undefined, { lp, q, adv: 2 });
    expect(is.loss).toBeCloseTo(-3, 12);
    expect(is.grad).toBeCloseTo(-3, 12);
    // ppo, A > 0, r = 1.5 above hi = 1.2: clipped, constant.
    const ppoHi = builtinLossValue("ppo", undefined, { lp, q, adv: 2 });
    expect(ppoHi.loss).toBeCloseTo(-2.4, 12);
    expect(ppoHi.grad).toBe(0);
    // ppo, A < 0, r = 1.5: the unclipped term is the minimum, gradient flows.
    const ppoNeg = builtinLossValue("ppo", undefined, { lp, q, adv: -2 });
    expect(ppoNeg.loss).toBeCloseTo(3, 12);
    expect(ppoNeg.grad).toBeCloseTo(3, 12);
    // cispo: stop-gradient of the clipped ratio times lp A.
    const cispo = builtinLossValue(
      "cispo",
      { clipLowThreshold: 0, clipHighThreshold: 4 },
      {
        lp,
        q,
        adv: 2,
      },
    );
    expect(cispo.loss).toBeCloseTo(-1.5 * lp * 2, 12);
    expect(cispo.grad).toBeCloseTo(-3, 12);
    const cispoClipped = builtinLossValue("cispo", undefined, { lp, q, adv: 2 });
    expect(cispoClipped.grad).toBeCloseTo(-2.4, 12);
    const dro = builtinLossValue("dro", { beta: 0.5 }, { lp, q, adv: 2, w: 2 });
    const d = lp - q;
    expect(dro.loss).toBeCloseTo(-2 * (lp * 2 - 0.25 * d * d), 12);
    expect(dro.grad).toBeCloseTo(-2 * (2 - 0.5 * d), 12);
  });

  it("grad is dloss/dlp away from the clip kinks (central differences; cispo's stop-gradient excluded)", () => {
    const h = 1e-6;
    const configs: Partial<Record<LossFnType, LossConfigFor<LossFnType>>> = {
      ppo: { clipLowThreshold: 0.8, clipHighThreshold: 1.2 },
    };
    for (const name of LOSS_FN_TYPES.filter((n) => n !== "cispo")) {
      for (const ratio of [0.5, 0.9, 1.1, 1.7]) {
        for (const adv of [-1.5, 0.7]) {
          const lp = q + Math.log(ratio);
          const cfg = configs[name];
          const tok = { q, adv, w: 0.8 };
          const { grad } = builtinLossValue(name, cfg, { lp, ...tok });
          const up = builtinLossValue(name, cfg, { lp: lp + h, ...tok }).loss;
          const down = builtinLossValue(name, cfg, { lp: lp - h, ...tok }).loss;
          expect(grad).toBeCloseTo((up - down) / (2 * h), 6);
        }
      }
    }
  });

  it("policy losses need q and adv", () => {
    expect(validationError(() => builtinLossValue("ppo", undefined, { lp: -1 })).field).toBe("q");
  });

  it("builtinLossOnData sums over datums and honours per-token clip bounds", () => {
    const d = makeDatum([1, 2], {
      target_tokens: [2, 3],
      logprobs: [q, q],
      advantages: [1, 1],
      clip_high_threshold: [1.1, 2],
    });
    const lp = [q + Math.log(1.5), q + Math.log(1.5)];
    const { loss, grads } = builtinLossOnData("ppo", undefined, [d, d], [lp, lp]);
    // Token 0: clipped at 1.1; token 1: r = 1.5 inside [0.8, 2].
    expect(loss).toBeCloseTo(2 * -(1.1 + 1.5), 6);
    expect(Array.from(grads[0]!)).toEqual([0, expect.closeTo(-1.5, 6)]);
  });
});

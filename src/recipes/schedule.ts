import { TinkerValidationError } from "../client/errors.js";

/** Learning-rate schedules: the multiplier of the base rate at `step` of `totalSteps`. */
export type LrSchedule = "linear" | "cosine" | "constant";

export const LR_SCHEDULES: readonly LrSchedule[] = ["linear", "cosine", "constant"];

/**
 * `linear`: 1 - step/total (reaches 0 at the end); `cosine`: (1 + cos(pi step/total)) / 2;
 * `constant`: 1.
 */
export function lrMultiplier(schedule: LrSchedule, step: number, totalSteps: number): number {
  const frac = totalSteps > 0 ? Math.min(1, Math.max(0, step / totalSteps)) : 0;
  switch (schedule) {
    case "linear":
      return 1 - frac;
    case "cosine":
      return 0.5 * (1 + Math.cos(Math.PI * frac));
    case "constant":
      return 1;
    default:
      throw new TinkerValidationError(
        `unknown lrSchedule "${String(schedule)}"; use one of ${LR_SCHEDULES.join(", ")}`,
        "lrSchedule",
      );
  }
}

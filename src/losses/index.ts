export type { CustomLossFn, CustomLossResult } from "../client/custom-loss.js";
export type { LossFnConfig, LossFnType } from "../client/types/params.js";
export { LOSS_FN_TYPES } from "../client/types/params.js";
export * from "./builtin.js";
export * from "./check-gradient.js";
export * from "./dpo.js";

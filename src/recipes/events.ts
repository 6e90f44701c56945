/**
 * The typed events of a recipe run. The progress display and the run files are subscribers like
 * any user code (a dashboard, W&B), so the loop never prints.
 */
import { EventEmitter } from "eventemitter3";
import type { RolloutSummaryRecord } from "./rl/data-processing.js";
import type { CheckpointRecord, MetricsRow } from "./run-dir.js";

/** A finished training step. */
export interface StepEvent {
  step: number;
  totalSteps: number;
  /** Tokens of the step's batch (model inputs). */
  numTokens: number;
  /** Seconds since the run started (resumed runs continue their clock). */
  elapsedSeconds: number;
  metrics: MetricsRow;
}

/** An evaluation's metrics (already merged into the step's `metrics` row). */
export interface EvaluationEvent {
  step: number;
  metrics: Record<string, number>;
}

/** One RL iteration's rollouts. */
export interface RolloutsEvent {
  step: number;
  /** Trajectory groups trained on (after constant-reward removal). */
  groups: number;
  /** Rollout summary records as written to `iteration_NNNNNN/train_rollout_summaries.jsonl`. */
  summaries: readonly RolloutSummaryRecord[];
}

/** How a run ended. */
export interface DoneEvent {
  stepsDone: number;
  aborted: boolean;
}

/** Event name to listener argument. */
export interface RecipeEvents {
  step: [StepEvent];
  metrics: [MetricsRow];
  evaluation: [EvaluationEvent];
  checkpoint: [CheckpointRecord];
  rollouts: [RolloutsEvent];
  /** Human-readable notes (resume point, skipped steps); the progress display shows them. */
  log: [string];
  done: [DoneEvent];
}

/** The emitter every recipe extends. */
export class RecipeEmitter extends EventEmitter<RecipeEvents> {}

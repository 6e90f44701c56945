/**
 * Every interval, budget and timeout of the protocol in one place (milliseconds). Defaults are
 * the reference SDK's; tests inject short values through `ClientOptions.timings`.
 */
export interface Timings {
  /** Heartbeat period (10 s). */
  heartbeatIntervalMs: number;
  /** Warn when no heartbeat succeeded for this long (120 s). */
  heartbeatWarnAfterMs: number;
  /** Heartbeat request timeout (10 s). */
  heartbeatTimeoutMs: number;
  /** Timeout of one retrieve_future long poll (45 s). */
  pollTimeoutMs: number;
  /** Layer-2 retry budget from the first attempt (300 s). */
  retryBudgetMs: number;
  /** Cap of the layer-2 and poll back-off (30 s). */
  maxBackoffMs: number;
  /** Base of the layer-2 and poll back-off `min(base * 2^n, max)` (1 s). */
  backoffBaseMs: number;
  /** Base of the layer-1 HTTP back-off `min(base * 2^n, cap)` (0.5 s). */
  httpBackoffBaseMs: number;
  /** Cap of the layer-1 HTTP back-off (10 s). */
  httpBackoffCapMs: number;
  /** Sleep between retries while the account is in a billing pause (5 s). */
  billingRetryMs: number;
  /** The billing window restarts after this long without a 402 (5 min). */
  billingResetMs: number;
  /** Refresh the JWT this long before it expires (5 min). */
  jwtRefreshBeforeMs: number;
  /** Refresh on demand when at most this much validity is left (60 s). */
  jwtOnDemandMs: number;
  /** Retry a failed background JWT refresh after this long (60 s). */
  jwtRetryMs: number;
  /** Minimum dynamic-config refresh period (10 s). */
  dynamicConfigMinIntervalMs: number;
  /** dynamic_config request timeout (10 s). */
  dynamicConfigTimeoutMs: number;
  /** At most one queue-state log line per this period (60 s). */
  queueStateLogIntervalMs: number;
  /** Sampling 429 back-off for small prompts (1 s) and large ones (5 s). */
  sampleBackoffSmallMs: number;
  sampleBackoffLargeMs: number;
  /** Sampling retry handler back-off base (0.5 s) and cap (10 s). */
  sampleRetryBaseMs: number;
  sampleRetryCapMs: number;
  /** Fail in-flight samples after this long without any progress (7200 s). */
  sampleStuckAfterMs: number;
  /** Archive URL: wait after a 503 (30 s), at most 6 attempts. */
  archiveRetryMs: number;
  /** Trace export poll period (5 s). */
  tracePollMs: number;
  /** Telemetry flush period (10 s) and request timeout (5 s). */
  telemetryFlushMs: number;
  telemetryTimeoutMs: number;
}

export const DEFAULT_TIMINGS: Readonly<Timings> = {
  heartbeatIntervalMs: 10_000,
  heartbeatWarnAfterMs: 120_000,
  heartbeatTimeoutMs: 10_000,
  pollTimeoutMs: 45_000,
  retryBudgetMs: 300_000,
  maxBackoffMs: 30_000,
  backoffBaseMs: 1_000,
  httpBackoffBaseMs: 500,
  httpBackoffCapMs: 10_000,
  billingRetryMs: 5_000,
  billingResetMs: 300_000,
  jwtRefreshBeforeMs: 300_000,
  jwtOnDemandMs: 60_000,
  jwtRetryMs: 60_000,
  dynamicConfigMinIntervalMs: 10_000,
  dynamicConfigTimeoutMs: 10_000,
  queueStateLogIntervalMs: 60_000,
  sampleBackoffSmallMs: 1_000,
  sampleBackoffLargeMs: 5_000,
  sampleRetryBaseMs: 500,
  sampleRetryCapMs: 10_000,
  sampleStuckAfterMs: 7_200_000,
  archiveRetryMs: 30_000,
  tracePollMs: 5_000,
  telemetryFlushMs: 10_000,
  telemetryTimeoutMs: 5_000,
};

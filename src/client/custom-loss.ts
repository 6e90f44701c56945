import { linkedSignal } from "./core/abort.js";
import { TinkerValidationError } from "./errors.js";
import { APIFuture, type FutureHooks } from "./future.js";
import type { CallOptions, TrainingClient } from "./training-client.js";
import type { Datum } from "./types/datum.js";
import type { ForwardBackwardOutput } from "./types/outputs.js";
import { TensorData } from "./types/tensor-data.js";

/** What a custom loss returns. */
export interface CustomLossResult {
  /** The loss value (reported back; the server optimizes the surrogate with the same gradient). */
  loss: number;
  /** Extra metrics, merged into the result's `metrics`. */
  metrics?: Record<string, number>;
  /**
   * d loss / d logprobs: one array per datum, the same length (and row-major layout) as that
   * datum's `logprobs`. TypeScript has no autograd, so the loss supplies its own gradient.
   */
  grads: Float32Array[];
}

/**
 * A loss over per-token logprobs. `logprobs[i]` is the server's log-probability of datum i's
 * `target_tokens` (flattened row-major for 2-D targets).
 */
export type CustomLossFn = (
  data: readonly Datum[],
  logprobs: Float32Array[],
) => CustomLossResult | Promise<CustomLossResult>;

/**
 * `forward_backward_custom` of the reference: a forward pass gives the logprobs, the user's loss
 * gives `g_i = dL/dlogprobs_i`, and a cross-entropy forward_backward with `weights = -g_i`
 * applies exactly that gradient (server cross-entropy is `sum(-lp * w)`, whose gradient is then
 * `sum(g * dlp/dtheta) = dL/dtheta`). The two requests hold this client's turn, so nothing else
 * of this client is submitted between them.
 *
 * Note: `metrics["loss:sum"]` of the result is the surrogate's value `sum(lp * g)`; the custom
 * loss is reported as `metrics["custom_loss:sum"]`.
 */
export function forwardBackwardCustom(
  client: TrainingClient,
  data: readonly Datum[],
  lossFn: CustomLossFn,
  opts: CallOptions = {},
): APIFuture<ForwardBackwardOutput> {
  if (data.length === 0) {
    throw new TinkerValidationError("No data provided: pass at least one Datum.", "data");
  }
  const forwardData = data.map((d, i) => {
    const target = d.lossFnInputs.target_tokens;
    if (!target) {
      throw new TinkerValidationError(
        `data[${i}] has no target_tokens; forwardBackwardCustom needs target_tokens (and optionally weights).`,
        "target_tokens",
      );
    }
    for (const k of Object.keys(d.lossFnInputs)) {
      if (k !== "target_tokens" && k !== "weights") {
        throw new TinkerValidationError(
          `data[${i}] has loss input "${k}"; forwardBackwardCustom accepts only target_tokens and weights.`,
          k,
        );
      }
    }
    if (d.lossFnInputs.weights) return d;
    const zeros = TensorData.fromTyped(new Float32Array(target.size), target.shape);
    return { modelInput: d.modelInput, lossFnInputs: { target_tokens: target, weights: zeros } };
  });

  return new APIFuture<ForwardBackwardOutput>(async (signal, hooks) => {
    // Both requests follow this future's cancel() as well as the caller's signal.
    const linked = linkedSignal([signal, opts.signal]);
    const callOpts: CallOptions = { ...opts, signal: linked.signal };
    try {
      return await run(callOpts, hooks);
    } finally {
      linked.dispose();
    }
  });

  async function run(callOpts: CallOptions, hooks: FutureHooks): Promise<ForwardBackwardOutput> {
    let userMetrics: Record<string, number> = {};
    let userLoss = 0;
    const pending = await client._exclusive(async (ops) => {
      const fwd = await ops.forward(forwardData, "cross_entropy", callOpts);
      const logprobs = fwd.lossFnOutputs.map((out, i) => {
        const lp = out.logprobs;
        if (!lp) {
          throw new TinkerValidationError(`forward output ${i} has no logprobs`, "logprobs");
        }
        const dense = lp.toDense();
        return dense instanceof Float32Array ? dense : Float32Array.from(dense);
      });
      const result = await lossFn(data, logprobs);
      if (!Array.isArray(result.grads) || result.grads.length !== data.length) {
        throw new TinkerValidationError(
          `the custom loss must return one gradient array per datum (${data.length}), got ${Array.isArray(result.grads) ? result.grads.length : typeof result.grads}`,
          "grads",
        );
      }
      userMetrics = result.metrics ?? {};
      userLoss = result.loss;
      const backwardData = data.map((d, i) => {
        const g = result.grads[i]!;
        const lp = logprobs[i]!;
        if (g.length !== lp.length) {
          throw new TinkerValidationError(
            `grads[${i}] has ${g.length} values but logprobs[${i}] has ${lp.length}`,
            "grads",
          );
        }
        const w = new Float32Array(g.length);
        for (let j = 0; j < g.length; j++) {
          const v = g[j]!;
          if (!Number.isFinite(v)) {
            throw new TinkerValidationError(`grads[${i}][${j}] is not finite (${v})`, "grads");
          }
          w[j] = -v;
        }
        const target = d.lossFnInputs.target_tokens!;
        return {
          modelInput: d.modelInput,
          lossFnInputs: {
            target_tokens: target,
            weights: TensorData.fromTyped(w, target.shape),
          },
        };
      });
      const fb = ops.forwardBackward(backwardData, "cross_entropy", callOpts);
      fb.on("queueState", hooks.onQueueState);
      const id = await fb.submitted;
      hooks.onSubmitted(id);
      return { fb };
    });
    const out = await pending.fb;
    return {
      ...out,
      metrics: { ...out.metrics, "custom_loss:sum": userLoss, ...userMetrics },
    };
  }
}

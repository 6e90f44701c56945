/** Run directories written by hand in the recipes' format (SFT-like and RL-like), for the report tests. */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

const jsonl = (rows: readonly unknown[]): string =>
  rows.map((r) => `${JSON.stringify(r)}\n`).join("");

/** Text that would break the page if it were not escaped. */
export const HOSTILE = `</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2"> & "quotes"`;

export async function writeSftRun(dir: string, steps = 12): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "config.json"),
    JSON.stringify({ recipe: "sft", model_name: "tiny-bytes", learning_rate: 2e-3, note: HOSTILE }),
  );
  const rows = Array.from({ length: steps }, (_, step) => ({
    step,
    train_mean_nll: 3 * Math.exp(-step / 5) + 0.5,
    learning_rate: 2e-3 * (1 - step / steps),
    num_tokens: 1000 + step,
    "time/total": 0.5 * (step + 1),
    ...(step % 4 === 3
      ? { "test/nll": 3 * Math.exp(-step / 6) + 0.7, "test/bpb": 1.2 - step / 50 }
      : {}),
  }));
  // The last line is torn (a crash mid-append): the report skips it.
  await writeFile(join(dir, "metrics.jsonl"), `${jsonl(rows)}{"step": ${steps}, "train_mean`);
  await writeFile(
    join(dir, "checkpoints.jsonl"),
    jsonl([
      {
        name: "000005",
        step: 6,
        epoch: 0,
        batch: 6,
        final: false,
        state_path: "tinker://run-1/weights/000005",
        loop_state: {},
      },
      {
        name: "final",
        step: steps,
        epoch: 0,
        batch: steps,
        final: true,
        state_path: "tinker://run-1/weights/final",
        sampler_path: "tinker://run-1/sampler_weights/final",
        loop_state: {},
      },
    ]),
  );
}

function summary(iteration: number, groupIdx: number, trajIdx: number, correct: number) {
  return {
    schema_version: 1,
    split: "train",
    iteration,
    group_idx: groupIdx,
    traj_idx: trajIdx,
    tags: ["gsm8k"],
    sampling_client_step: iteration,
    total_reward: correct ? 1 : -0.1,
    final_reward: 0,
    trajectory_metrics: {},
    final_ob_len: 0,
    steps: [
      {
        step_idx: 0,
        ob_len: 40,
        ac_len: 12,
        reward: correct ? 1 : -0.1,
        episode_done: true,
        metrics: { format: 1, correct },
        logs: { question: "unused when ob_text is present" },
        ob_text: `User: Question ${groupIdx} of iteration ${iteration}? ${HOSTILE}\nAssistant:`,
        ac_text: ` The answer is \\boxed{${groupIdx + trajIdx}}.`,
      },
    ],
  };
}

export async function writeRlRun(dir: string, iterations = 5): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "config.json"), JSON.stringify({ recipe: "rl", group_size: 2 }));
  const rows = Array.from({ length: iterations }, (_, step) => ({
    step,
    "env/all/reward/total": -0.1 + step * 0.2,
    "env/all/correct": step / iterations,
    "env/all/format": 0.5 + step / (2 * iterations),
    "optim/kl_sample_train_v1": 0.001 * (step + 1),
    "optim/kl_sample_train_v2": 0.0005 * (step + 1),
    "optim/entropy": 2 - step * 0.1,
    learning_rate: 1e-3,
    num_tokens: 500,
    "time/total": step + 1,
    ...(step % 2 === 0 ? { "test/env/all/correct": step / (iterations + 1) } : {}),
  }));
  await writeFile(join(dir, "metrics.jsonl"), jsonl(rows));
  for (let it = 0; it < iterations; it++) {
    const d = join(dir, `iteration_${String(it).padStart(6, "0")}`);
    await mkdir(d, { recursive: true });
    await writeFile(
      join(d, "train_rollout_summaries.jsonl"),
      jsonl([summary(it, 0, 0, 1), summary(it, 0, 1, 0), summary(it, 1, 0, it % 2)]),
    );
  }
}

/**
 * RLRecipe against the real local server (tiny-bytes): a user Env learns, every policy loss trains
 * on datums aligned with the sampler (on-policy sample/train KL ~ 0), the off-policy pipeline, the
 * GSM8K source with test-set evaluation, rollout summaries, and configuration errors.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LowercaseEnv, lowercaseRecipe } from "../../examples/custom-env-rl.js";
import { TinkerValidationError } from "../../src/client/errors.js";
import { ListRLDataset } from "../../src/envs/list-dataset.js";
import { ProblemGroupBuilder } from "../../src/envs/problem-env.js";
import { customRL, gsm8kRL } from "../../src/recipes/rl/datasets.js";
import { type RLLoss, RLRecipe } from "../../src/recipes/rl/recipe.js";
import { readJsonLines } from "../../src/recipes/run-dir.js";
import { GSM8K_DIR } from "../fixture-paths.js";
import { startRecipeServer } from "./fixtures.js";

type Server = Awaited<ReturnType<typeof startRecipeServer>>;
type Row = Record<string, number>;

async function metrics(logDir: string): Promise<Row[]> {
  return (await readJsonLines<Row>(join(logDir, "metrics.jsonl"))).rows;
}

describe("RLRecipe on the local engine", () => {
  let s: Server;
  beforeAll(async () => {
    s = await startRecipeServer("recipes-rl");
  });
  afterAll(async () => {
    await s?.close();
  });

  it("a user Env (examples/custom-env-rl.ts) raises its mean reward", async () => {
    const logDir = join(s.dir, "lowercase");
    const base = lowercaseRecipe({ logDir, steps: 12 });
    const recipe = new RLRecipe({
      ...base.config,
      service: s.service,
      progress: false,
      saveEvery: 0,
    });
    const result = await recipe.run();
    expect(result).toMatchObject({ stepsDone: 12, aborted: false });
    const reward = (await metrics(logDir)).map((r) => r["env/all/reward/total"]!);
    const early = (reward[0]! + reward[1]!) / 2;
    const late = (reward.at(-1)! + reward.at(-2)!) / 2;
    console.log(`lowercase reward ${reward.map((r) => r.toFixed(2)).join(" ")}`);
    expect(late).toBeGreaterThan(early + 0.3);
    expect(late).toBeGreaterThan(0.6);
  }, 180_000);

  it.each<[RLLoss, Record<string, number> | undefined]>([
    ["importance_sampling", undefined],
    ["ppo", { clipLowThreshold: 0.8, clipHighThreshold: 1.2 }],
    ["cispo", { clipLowThreshold: 0.5, clipHighThreshold: 2 }],
    ["dro", { beta: 0.1 }],
  ])(
    "%s trains on datums aligned with the sampled tokens",
    async (loss, lossConfig) => {
      const logDir = join(s.dir, `loss-${loss}`);
      const base = lowercaseRecipe({ logDir, steps: 2 });
      await new RLRecipe({
        ...base.config,
        service: s.service,
        progress: false,
        saveEvery: 0,
        loss,
        ...(lossConfig !== undefined ? { lossConfig } : {}),
      }).run();
      const config = JSON.parse(await readFile(join(logDir, "config.json"), "utf8"));
      expect(config.loss_fn).toBe(loss);
      for (const row of await metrics(logDir)) {
        // On policy, the learner's logprobs of the targets equal the sampler's only when the datum's
        // shift and mask line up with the sampled tokens.
        expect(Math.abs(row["optim/kl_sample_train_v1"]!)).toBeLessThan(1e-3);
        expect(row["optim/entropy"]).toBeGreaterThan(0);
        expect(Number.isFinite(row["optim/loss:sum"])).toBe(true);
        expect(row.num_datums).toBe(32);
      }
    },
    120_000,
  );

  it("numSubsteps: 2 takes an optimizer step between the two halves of the batch", async () => {
    const logDir = join(s.dir, "substeps");
    const base = lowercaseRecipe({ logDir, steps: 1 });
    await new RLRecipe({
      ...base.config,
      service: s.service,
      progress: false,
      numSubsteps: 2,
    }).run();
    const [row] = await metrics(logDir);
    // The second half is scored by weights already moved by the first half's step.
    expect(Math.abs(row!["optim/kl_sample_train_v1"]!)).toBeGreaterThan(1e-3);
  }, 60_000);

  it("off-policy: batch n is sampled with the weights of step n - d, and the run trains", async () => {
    const logDir = join(s.dir, "async");
    const base = lowercaseRecipe({ logDir, steps: 5 });
    await new RLRecipe({
      ...base.config,
      service: s.service,
      progress: false,
      saveEvery: 0,
      maxStepsOffPolicy: 2,
    }).run();
    const rows = await metrics(logDir);
    expect(rows.map((r) => r["sampling_client/step"])).toEqual([0, 0, 0, 1, 2]);
    expect(rows.map((r) => r["sampling_client/staleness"])).toEqual([0, 1, 2, 2, 2]);
    // Stale samples: the learner has moved away from the sampler (off-policy KL is not ~0).
    expect(Math.abs(rows[3]!["optim/kl_sample_train_v1"]!)).toBeGreaterThan(1e-4);
  }, 120_000);

  it("stops cleanly on abort with a resumable checkpoint holding the queued rollouts", async () => {
    const logDir = join(s.dir, "rl-abort");
    const controller = new AbortController();
    const base = lowercaseRecipe({ logDir, steps: 8 });
    const recipe = new RLRecipe({
      ...base.config,
      service: s.service,
      progress: false,
      saveEvery: 0,
      maxStepsOffPolicy: 1,
      signal: controller.signal,
    });
    recipe.on("step", (e) => {
      if (e.step === 1) controller.abort();
    });
    const result = await recipe.run();
    expect(result).toMatchObject({ aborted: true, stepsDone: 2 });
    const ckpts = (await readJsonLines<Record<string, unknown>>(join(logDir, "checkpoints.jsonl")))
      .rows;
    expect(ckpts).toHaveLength(1);
    expect(ckpts[0]).toMatchObject({ step: 2, final: false, state_path: result.statePath });
    const loop = ckpts[0]!.loop_state as { queue_file: string | null };
    // Batch 2 was already being sampled (off by one step): it is saved, not lost.
    expect(loop.queue_file).toBe("async_queue/000002.json");
    const queue = JSON.parse(await readFile(join(logDir, loop.queue_file!), "utf8"));
    expect(queue.batches.map((b: { batch: number }) => b.batch)).toEqual([2]);
  }, 120_000);

  it("GSM8K: trains a step, evaluates the test set, writes rollout summaries in the cookbook's schema", async () => {
    const logDir = join(s.dir, "gsm8k");
    const recipe = new RLRecipe({
      model: "tiny-bytes",
      logDir,
      service: s.service,
      progress: false,
      learningRate: 1e-3,
      maxTokens: 8,
      maxSteps: 2,
      evalEvery: 1,
      saveEvery: 0,
      dataset: gsm8kRL({
        groupsPerBatch: 2,
        groupSize: 2,
        paths: { train: join(GSM8K_DIR, "train.jsonl"), test: join(GSM8K_DIR, "test.jsonl") },
        testBatches: 1,
      }),
    });
    const summariesSeen: number[] = [];
    recipe.on("rollouts", (e) => summariesSeen.push(e.summaries.length));
    await recipe.run();
    expect(summariesSeen).toEqual([4, 4]);
    const rows = await metrics(logDir);
    expect(rows).toHaveLength(2);
    for (const r of rows) {
      expect(r).toHaveProperty("test/env/all/correct");
      expect(r).toHaveProperty("test/env/all/reward/total");
      expect(r).toHaveProperty("env/all/correct");
      expect(r).toHaveProperty("env/all/format");
      expect(r["env/all/total_episodes"]).toBe(4);
    }
    const summaries = (
      await readJsonLines<Record<string, unknown>>(
        join(logDir, "iteration_000001", "train_rollout_summaries.jsonl"),
      )
    ).rows;
    expect(summaries).toHaveLength(4);
    expect(summaries[0]).toMatchObject({ split: "train", iteration: 1, group_idx: 0, traj_idx: 0 });
    for (const key of [
      "schema_version",
      "tags",
      "sampling_client_step",
      "total_reward",
      "final_reward",
    ]) {
      expect(summaries[0]).toHaveProperty(key);
    }
    const steps = summaries[0]!.steps as Array<Record<string, unknown>>;
    expect(steps[0]).toMatchObject({ step_idx: 0, episode_done: true });
    expect(typeof steps[0]!.ac_text).toBe("string");
  }, 120_000);

  it("refuses bad configurations before any training request", async () => {
    const one = customRL("one", ({ renderer }) => ({
      train: new ListRLDataset([0, 1], {
        batchSize: 1,
        makeGroup: () => new ProblemGroupBuilder(() => new LowercaseEnv(renderer), 1, "one"),
      }),
      test: undefined,
    }));
    const base = {
      model: "tiny-bytes",
      logDir: join(s.dir, "bad"),
      service: s.service,
      progress: false,
      maxTokens: 4,
      dataset: one,
    };
    const fails = async (make: () => RLRecipe, field: string, message: RegExp) => {
      let error: unknown;
      try {
        await make().run();
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(TinkerValidationError);
      expect((error as TinkerValidationError).field).toBe(field);
      expect((error as Error).message).toMatch(message);
    };
    await fails(() => new RLRecipe(base), "groupSize", /groupSize 1.*use groupSize >= 2/);
    await fails(() => new RLRecipe({ ...base, maxTokens: 0 }), "maxTokens", /maxTokens must be/);
    await fails(() => new RLRecipe({ ...base, learningRate: -1 }), "learningRate", /> 0/);
    await fails(
      () =>
        new RLRecipe({
          ...base,
          loss: "ppo",
          lossConfig: { clipLowThreshold: 1.5, clipHighThreshold: 1.2 },
        }),
      "lossFnConfig.clipLowThreshold",
      /clip/,
    );
    await fails(
      () => new RLRecipe({ ...base, loss: "ppo", lossConfig: { beta: 1 } }),
      "lossFnConfig.beta",
      /beta/,
    );
    const { rows } = await readJsonLines(join(s.dir, "bad", "metrics.jsonl"));
    expect(rows).toEqual([]);
  });
});

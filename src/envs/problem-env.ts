import { TinkerValidationError } from "../client/errors.js";
import { ModelInput } from "../client/types/model-input.js";
import { getTextContent } from "../renderers/content.js";
import { isCleanTermination, type Message, type Renderer } from "../renderers/types.js";
import type {
  Action,
  Env,
  EnvGroupBuilder,
  GroupReward,
  InitialObservation,
  StepResult,
  StopCondition,
  Trajectory,
} from "./types.js";

/** Options shared by every {@link ProblemEnv}. */
export interface ProblemEnvOptions {
  /** Messages before the question (e.g. a few-shot example). Default none. */
  convoPrefix?: readonly Message[];
  /** Weight of the format term of the reward. Default 0.1. */
  formatCoef?: number;
  /**
   * Count a response as well formed only when it ended on the renderer's stop sequence (not EOS or a
   * truncation). Default true, as in the cookbook; false accepts any clean ending.
   */
  requireStopSequenceForFormat?: boolean;
}

/** The {@link ProblemEnvOptions} scoring fields of `o` that are set (for forwarding to each env). */
export function scoringOptions(
  o: Pick<ProblemEnvOptions, "formatCoef" | "requireStopSequenceForFormat">,
): ProblemEnvOptions {
  return {
    ...(o.formatCoef !== undefined ? { formatCoef: o.formatCoef } : {}),
    ...(o.requireStopSequenceForFormat !== undefined
      ? { requireStopSequenceForFormat: o.requireStopSequenceForFormat }
      : {}),
  };
}

/** Throw a {@link TinkerValidationError} naming each of `keys` of `o` that is not a positive integer. */
export function requirePositiveIntegers<K extends string>(
  o: Readonly<Record<K, number>>,
  keys: readonly K[],
): void {
  for (const key of keys) {
    const v = o[key];
    if (!Number.isInteger(v) || v < 1) {
      throw new TinkerValidationError(`${key} must be a positive integer, got ${v}`, key);
    }
  }
}

/**
 * A single-turn question/answer environment. Subclasses say what the question is and how to check a
 * response; the reward is the cookbook's
 *
 *   reward = formatCoef * (correctFormat - 1) + correctAnswer
 *
 * so with `formatCoef = 0.1`: right and well formed 1.0, right but badly formed 0.9, wrong but well
 * formed 0, wrong and badly formed -0.1. The response text is the parsed message's text (thinking
 * removed).
 */
export abstract class ProblemEnv implements Env {
  readonly renderer: Renderer;
  readonly convoPrefix: readonly Message[];
  readonly formatCoef: number;
  readonly requireStopSequenceForFormat: boolean;

  constructor(renderer: Renderer, options: ProblemEnvOptions = {}) {
    const formatCoef = options.formatCoef ?? 0.1;
    if (!Number.isFinite(formatCoef) || formatCoef < 0) {
      throw new TinkerValidationError(
        `formatCoef must be a finite number >= 0, got ${formatCoef}`,
        "formatCoef",
      );
    }
    this.renderer = renderer;
    this.convoPrefix = options.convoPrefix ?? [];
    this.formatCoef = formatCoef;
    this.requireStopSequenceForFormat = options.requireStopSequenceForFormat ?? true;
  }

  /** The question shown to the model as the last user message. */
  abstract getQuestion(): string;
  /** Whether the response's answer is correct. */
  abstract checkAnswer(response: string): boolean | Promise<boolean>;
  /** Whether the response has the requested format. */
  abstract checkFormat(response: string): boolean | Promise<boolean>;
  /** The reference answer, for logs. */
  abstract getReferenceAnswer(): string;

  /** The renderer's stop sequences. */
  get stopCondition(): StopCondition {
    return this.renderer.getStopSequences();
  }

  /** The conversation up to and including the question. */
  conversation(): Message[] {
    return [...this.convoPrefix, { role: "user", content: this.getQuestion() }];
  }

  /** The generation prompt for {@link conversation}. */
  async initialObservation(): Promise<InitialObservation> {
    return {
      observation: this.renderer.buildGenerationPrompt(this.conversation()),
      stopCondition: this.stopCondition,
    };
  }

  /** Parse the sampled tokens, score them (see the class comment) and end the episode. */
  async step(action: Action): Promise<StepResult> {
    const { message, termination } = this.renderer.parseResponse(action);
    const content = getTextContent(message);
    const wellFormed = this.requireStopSequenceForFormat
      ? termination === "stop_sequence"
      : isCleanTermination(termination);
    const correctFormat = wellFormed && (await this.checkFormat(content)) ? 1 : 0;
    const correctAnswer = (await this.checkAnswer(content)) ? 1 : 0;
    const reward = this.formatCoef * (correctFormat - 1) + correctAnswer;
    return {
      reward,
      episodeDone: true,
      nextObservation: ModelInput.empty(),
      nextStopCondition: this.stopCondition,
      metrics: { format: correctFormat, correct: correctAnswer },
      logs: {
        question: this.getQuestion(),
        response: content,
        reference: this.getReferenceAnswer(),
        termination,
        reward,
      },
    };
  }
}

/**
 * A group of `numEnvs` envs on the same problem, made by `makeEnv` (called once per env, since envs
 * are single-use). Group rewards are zero: all reward comes from the envs' steps.
 */
export class ProblemGroupBuilder implements EnvGroupBuilder {
  readonly makeEnv: () => Env;
  readonly numEnvs: number;
  readonly datasetName: string;

  constructor(makeEnv: () => Env, numEnvs: number, datasetName = "problems") {
    if (!Number.isInteger(numEnvs) || numEnvs < 1) {
      throw new TinkerValidationError(
        `group size must be a positive integer, got ${numEnvs}`,
        "groupSize",
      );
    }
    this.makeEnv = makeEnv;
    this.numEnvs = numEnvs;
    this.datasetName = datasetName;
  }

  /** `numEnvs` fresh envs. */
  async makeEnvs(): Promise<Env[]> {
    return Array.from({ length: this.numEnvs }, () => this.makeEnv());
  }

  /** Zero for every trajectory. */
  async computeGroupRewards(trajectories: readonly Trajectory[]): Promise<GroupReward[]> {
    return trajectories.map(() => ({ reward: 0, metrics: {} }));
  }

  /** `[datasetName]`. */
  loggingTags(): string[] {
    return [this.datasetName];
  }
}

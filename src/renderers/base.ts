import { TinkerValidationError } from "../client/errors.js";
import {
  type EncodedTextChunk,
  encodedText,
  ModelInput,
  type ModelInputChunk,
} from "../client/types/model-input.js";
import type { Tokenizer } from "../tokenizers/types.js";
import { getThinkingContent, hasImagePart, hasThinkingPart } from "./content.js";
import {
  type GenerationPromptOptions,
  type Message,
  type ParsedResponse,
  type RenderContext,
  type RenderedMessage,
  type Renderer,
  type SupervisedExample,
  type SupervisedExampleOptions,
  type ToolSpec,
  TrainOnWhat,
} from "./types.js";

const FRAMING_CACHE_LIMIT = 4096;
const CONTENT_CACHE_LIMIT = 64;
const TRAIN_ON_WHAT_VALUES: readonly string[] = Object.values(TrainOnWhat);

/** What a renderer's format can express; used to reject input it would silently mangle. */
export interface RendererCapabilities {
  readonly roles: readonly string[];
  readonly thinking: boolean;
  readonly toolCalls: boolean;
  readonly images: boolean;
}

/** Options every built-in renderer takes. */
export interface RendererOptions {
  /**
   * How special-token text inside message content (a user typing `<|im_end|>` or `<|eot_id|>`)
   * is encoded: `"text"` (default) as plain text, so content cannot forge turn markers; `"tokens"`
   * as the special tokens themselves, which is what the model's chat template does (it tokenizes
   * its output as one string). Everything else matches the template either way. To use it under
   * a registry name: `registerRenderer("qwen3", (t) => new Qwen3Renderer(t, "thinking",
   * { specialTokensInContent: "tokens" }))`.
   */
  readonly specialTokensInContent?: "text" | "tokens";
}

/** The context of message `idx` within `messages`. */
export function renderContext(messages: readonly Message[], idx: number): RenderContext {
  let lastUserIndex = -1;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]!.role === "user") {
      lastUserIndex = i;
      break;
    }
  }
  return {
    idx,
    isLast: idx === messages.length - 1,
    prevMessage: messages[idx - 1],
    nextMessage: messages[idx + 1],
    lastUserIndex,
    inLastAssistantTurn: idx > lastUserIndex,
  };
}

/**
 * Shared machinery of the chat renderers: prompt assembly, supervised weights for every
 * `TrainOnWhat` mode (with the prefill correction) and input validation. Subclasses supply
 * `renderMessage`, the generation suffix, stop sequences and parsing.
 */
export abstract class BaseRenderer implements Renderer {
  abstract readonly name: string;
  readonly tokenizer: Tokenizer;
  abstract readonly capabilities: RendererCapabilities;
  readonly #framing = new Map<string, number[]>();
  readonly #content = new Map<string, number[]>();
  readonly #splitSpecialTokens: boolean;
  get disablesThinking(): boolean {
    return false;
  }
  get hasExtensionProperty(): boolean {
    return false;
  }

  constructor(tokenizer: Tokenizer, options: RendererOptions = {}) {
    this.tokenizer = tokenizer;
    const mode = options.specialTokensInContent ?? "text";
    if (mode !== "text" && mode !== "tokens") {
      throw new TinkerValidationError(
        `specialTokensInContent must be "text" or "tokens" (got ${JSON.stringify(mode)})`,
        "specialTokensInContent",
      );
    }
    this.#splitSpecialTokens = mode === "text";
  }

  abstract renderMessage(message: Message, ctx: RenderContext): RenderedMessage;
  /**
   * Text after the last message that opens a message of `role` (ctx.idx === messages.length);
   * special tokens in it are honoured.
   */
  protected abstract generationSuffix(role: string, ctx: RenderContext): string;
  abstract getStopSequences(): string[] | number[];
  abstract parseResponse(tokens: ArrayLike<number>): ParsedResponse;

  createConversationPrefixWithTools(
    _tools: readonly ToolSpec[],
    _systemPrompt?: string,
  ): Message[] {
    throw new TinkerValidationError(
      `renderer "${this.name}" has no tool-calling format; use a renderer with tools (qwen3, qwen3_instruct, qwen3_5)`,
      "tools",
    );
  }

  /** Tokens at the very start of every sequence. */
  protected bosTokens(): number[] {
    return [];
  }

  /**
   * Whether a user message asks something, for the format's "last query" (Qwen templates do not
   * count a user message that only carries a `<tool_response>` block).
   */
  protected isQuery(message: Message): boolean {
    return message.role === "user";
  }

  /** {@link renderContext} plus this format's `lastQueryIndex`. */
  protected contextAt(messages: readonly Message[], idx: number): RenderContext {
    let lastQueryIndex = -1;
    for (let i = messages.length - 1; i >= 0; i--) {
      if (messages[i]!.role === "user" && this.isQuery(messages[i]!)) {
        lastQueryIndex = i;
        break;
      }
    }
    return { ...renderContext(messages, idx), lastQueryIndex };
  }

  /**
   * Encode a framing string (headers, markers; special tokens in it are honoured). Framing
   * strings repeat on every message, so their encodings are memoised.
   */
  protected encodeFraming(text: string): number[] {
    let ids = this.#framing.get(text);
    if (ids === undefined) {
      ids = this.tokenizer.encode(text, { addSpecialTokens: false });
      if (this.#framing.size >= FRAMING_CACHE_LIMIT) this.#framing.clear();
      this.#framing.set(text, ids);
    }
    return ids;
  }

  /**
   * Encode message text with special-token splitting (a user typing `<|im_start|>` gets plain
   * text) unless `specialTokensInContent: "tokens"`. A small LRU serves the re-render of the same
   * messages that the prefill correction of `buildSupervisedExample` does.
   */
  protected encodeContent(text: string): number[] {
    const hit = this.#content.get(text);
    if (hit !== undefined) {
      this.#content.delete(text);
      this.#content.set(text, hit);
      return hit;
    }
    const ids = this.tokenizer.encode(text, {
      addSpecialTokens: false,
      splitSpecialTokens: this.#splitSpecialTokens,
    });
    this.#content.set(text, ids);
    if (this.#content.size > CONTENT_CACHE_LIMIT) {
      const oldest = this.#content.keys().next().value;
      if (oldest !== undefined) this.#content.delete(oldest);
    }
    return ids;
  }

  /**
   * Encode `lead + content` as the one string a chat template writes, split where `lead` ends.
   * `lead` is the plain framing text after the header's last special token (Qwen's `user\n`,
   * Llama's `\n\n`); encoding it apart from the content would put a token boundary where the
   * template's text has none (`user\n` + `\nHi` gives two `\n` tokens, the whole text one
   * `\n\n`). A token that spans the boundary belongs to the content, whose characters it ends in.
   */
  protected encodeJoined(lead: string, content: string): { lead: number[]; content: number[] } {
    const whole = this.encodeContent(lead + content);
    const alone = this.encodeFraming(lead);
    let k = 0;
    while (k < alone.length && k < whole.length && alone[k] === whole[k]) k++;
    return { lead: whole.slice(0, k), content: whole.slice(k) };
  }

  protected chunk(text: string): EncodedTextChunk {
    return encodedText(this.encodeFraming(text));
  }

  /** Throw a typed error for anything this format cannot express. */
  protected validate(messages: readonly Message[], what: string): void {
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new TinkerValidationError(
        `${what}: the conversation is empty; pass at least one message`,
        "messages",
      );
    }
    const caps = this.capabilities;
    const { lastUserIndex } = renderContext(messages, 0);
    messages.forEach((m, i) => {
      const where = `messages[${i}]`;
      if (typeof m !== "object" || m === null || typeof m.role !== "string") {
        throw new TinkerValidationError(`${where} is not a message {role, content}`, where);
      }
      if (!caps.roles.includes(m.role)) {
        throw new TinkerValidationError(
          `${where}: role "${m.role}" does not exist in the ${this.name} format (supported: ${caps.roles.join(", ")})`,
          `${where}.role`,
        );
      }
      if (typeof m.content !== "string" && !Array.isArray(m.content)) {
        throw new TinkerValidationError(
          `${where}: content must be a string or an array of parts`,
          `${where}.content`,
        );
      }
      if (hasThinkingPart(m)) {
        if (!caps.thinking) {
          throw new TinkerValidationError(
            `${where}: renderer "${this.name}" has no thinking format; remove the thinking part or use a thinking renderer (e.g. qwen3, qwen3_5)`,
            `${where}.content`,
          );
        }
        if (m.role !== "assistant") {
          throw new TinkerValidationError(
            `${where}: only assistant messages can carry thinking parts`,
            `${where}.content`,
          );
        }
        if (this.disablesThinking && i > lastUserIndex && getThinkingContent(m).length > 0) {
          throw new TinkerValidationError(
            `${where}: renderer "${this.name}" disables thinking, but this turn contains reasoning; drop the thinking part or use the thinking variant of the renderer`,
            `${where}.content`,
          );
        }
      }
      if (hasImagePart(m) && !caps.images) {
        throw new TinkerValidationError(
          `${where}: renderer "${this.name}" cannot render image parts`,
          `${where}.content`,
        );
      }
      if (m.toolCalls !== undefined && m.toolCalls.length > 0) {
        if (!caps.toolCalls) {
          throw new TinkerValidationError(
            `${where}: renderer "${this.name}" has no tool-call format; remove toolCalls or use a renderer with tools`,
            `${where}.toolCalls`,
          );
        }
        if (m.role !== "assistant") {
          throw new TinkerValidationError(
            `${where}: only assistant messages can carry toolCalls`,
            `${where}.toolCalls`,
          );
        }
      }
    });
  }

  buildGenerationPrompt(
    messages: readonly Message[],
    options: GenerationPromptOptions = {},
  ): ModelInput {
    this.validate(messages, "buildGenerationPrompt");
    const role = options.role ?? "assistant";
    if (!this.capabilities.roles.includes(role)) {
      throw new TinkerValidationError(
        `buildGenerationPrompt: role "${role}" does not exist in the ${this.name} format`,
        "role",
      );
    }
    const chunks: ModelInputChunk[] = [];
    const bos = this.bosTokens();
    if (bos.length > 0) chunks.push(encodedText(bos));
    messages.forEach((m, i) => {
      const r = this.renderMessage(m, this.contextAt(messages, i));
      if (r.header !== undefined && r.header.tokens.length > 0) chunks.push(r.header);
      for (const c of r.output)
        if (c.type !== "encoded_text" || c.tokens.length > 0) chunks.push(c);
    });
    const suffixCtx: RenderContext = {
      ...this.contextAt(messages, messages.length),
      prevMessage: messages[messages.length - 1],
    };
    const suffix = this.generationSuffix(role, suffixCtx);
    // The prefill continues the suffix's text, so the two are encoded as one string.
    const prefill = options.prefill ?? "";
    const tail =
      prefill.length > 0
        ? this.tokenizer.encode(suffix + prefill, { addSpecialTokens: false })
        : this.encodeFraming(suffix);
    if (tail.length > 0) chunks.push(encodedText(tail));
    return new ModelInput(chunks);
  }

  buildSupervisedExample(
    messages: readonly Message[],
    options: SupervisedExampleOptions = {},
  ): SupervisedExample {
    const mode = options.trainOnWhat ?? TrainOnWhat.LAST_ASSISTANT_MESSAGE;
    this.validate(messages, "buildSupervisedExample");
    checkTrainOnWhat(messages, mode);
    const chunks: EncodedTextChunk[] = [];
    const chunkWeights: number[] = [];
    const push = (c: ModelInputChunk, w: number): void => {
      if (c.type !== "encoded_text") {
        throw new TinkerValidationError(
          `renderer "${this.name}" produced a non-text chunk, which supervised examples do not support yet`,
          "messages",
        );
      }
      if (c.tokens.length === 0) return;
      chunks.push(c);
      chunkWeights.push(w);
    };
    const bos = this.bosTokens();
    if (bos.length > 0) push(encodedText(bos), 0);
    messages.forEach((m, i) => {
      const ctx = this.contextAt(messages, i);
      const r = this.renderMessage(m, ctx);
      const outputWeight = outputIsTrained(m, ctx, mode) ? 1 : 0;
      if (r.header !== undefined) push(r.header, mode === TrainOnWhat.ALL_TOKENS ? 1 : 0);
      for (const c of r.output) push(c, outputWeight);
      if (ctx.isLast && r.stopOverlap !== undefined) push(r.stopOverlap, outputWeight);
    });
    const modelInput = new ModelInput(chunks);
    const w = new Float32Array(modelInput.length);
    let at = 0;
    chunks.forEach((c, k) => {
      const end = at + c.tokens.length;
      w.fill(chunkWeights[k]!, at, end);
      at = end;
    });
    if (mode === TrainOnWhat.LAST_ASSISTANT_MESSAGE || mode === TrainOnWhat.LAST_ASSISTANT_TURN) {
      this.zeroGenerationPromptWeights(messages, mode, modelInput, w);
    }
    return { modelInput, weights: w };
  }

  /**
   * Prefill correction: the tokens of the generation prompt that precedes the trained turn are
   * what the model is given at inference, never what it produces, so they get weight 0 (this
   * covers prefills such as `<think>\n`). A no-think renderer whose prompt is not a prefix of the
   * rendered turn was handed a turn the model could not have produced.
   */
  private zeroGenerationPromptWeights(
    messages: readonly Message[],
    mode: TrainOnWhat,
    full: ModelInput,
    weights: Float32Array,
  ): void {
    const { lastUserIndex } = renderContext(messages, 0);
    const boundary =
      mode === TrainOnWhat.LAST_ASSISTANT_MESSAGE ? messages.length - 1 : lastUserIndex + 1;
    const trained = messages[boundary];
    if (boundary <= 0 || trained === undefined || trained.role !== "assistant") return;
    const prompt = this.buildGenerationPrompt(messages.slice(0, boundary)).toInt32Array();
    const tokens = full.toInt32Array();
    let isPrefix = prompt.length <= tokens.length;
    for (let k = 0; isPrefix && k < prompt.length; k++) isPrefix = prompt[k] === tokens[k];
    if (isPrefix) {
      weights.fill(0, 0, prompt.length);
    } else if (this.disablesThinking) {
      throw new TinkerValidationError(
        `renderer "${this.name}" disables thinking, but messages[${boundary}] does not start the way its generation prompt does (it contains reasoning, or the conversation has no user message)`,
        `messages[${boundary}]`,
      );
    }
  }

  buildSupervisedExamples(
    messages: readonly Message[],
    options: SupervisedExampleOptions = {},
  ): SupervisedExample[] {
    const mode = options.trainOnWhat ?? TrainOnWhat.LAST_ASSISTANT_TURN;
    const perMessage =
      mode === TrainOnWhat.LAST_ASSISTANT_TURN || mode === TrainOnWhat.ALL_ASSISTANT_MESSAGES;
    if (this.hasExtensionProperty || !perMessage) {
      return [this.buildSupervisedExample(messages, { trainOnWhat: mode })];
    }
    this.validate(messages, "buildSupervisedExamples");
    const out: SupervisedExample[] = [];
    messages.forEach((m, i) => {
      if (m.role === "assistant" && outputIsTrained(m, renderContext(messages, i), mode)) {
        out.push(
          this.buildSupervisedExample(messages.slice(0, i + 1), {
            trainOnWhat: TrainOnWhat.LAST_ASSISTANT_MESSAGE,
          }),
        );
      }
    });
    return out;
  }
}

function checkTrainOnWhat(messages: readonly Message[], mode: TrainOnWhat): void {
  if (!TRAIN_ON_WHAT_VALUES.includes(mode)) {
    throw new TinkerValidationError(
      `unknown trainOnWhat "${String(mode)}"; use one of ${TRAIN_ON_WHAT_VALUES.join(", ")}`,
      "trainOnWhat",
    );
  }
  messages.forEach((m, i) => {
    if (mode === TrainOnWhat.CUSTOMIZED && typeof m.trainable !== "boolean") {
      throw new TinkerValidationError(
        `messages[${i}]: trainOnWhat "customized" needs trainable: true|false on every message`,
        `messages[${i}].trainable`,
      );
    }
    if (mode !== TrainOnWhat.CUSTOMIZED && m.trainable !== undefined) {
      throw new TinkerValidationError(
        `messages[${i}]: "trainable" is only allowed with trainOnWhat "customized" (got "${mode}")`,
        `messages[${i}].trainable`,
      );
    }
  });
}

/** Whether the output tokens of a message get weight 1 under `mode`. */
export function outputIsTrained(message: Message, ctx: RenderContext, mode: TrainOnWhat): boolean {
  const isAssistant = message.role === "assistant";
  switch (mode) {
    case TrainOnWhat.LAST_ASSISTANT_MESSAGE:
      return ctx.isLast && isAssistant;
    case TrainOnWhat.LAST_ASSISTANT_TURN:
      return isAssistant && ctx.idx > ctx.lastUserIndex;
    case TrainOnWhat.ALL_ASSISTANT_MESSAGES:
      return isAssistant;
    case TrainOnWhat.ALL_MESSAGES:
    case TrainOnWhat.ALL_TOKENS:
      return true;
    case TrainOnWhat.ALL_USER_AND_SYSTEM_MESSAGES:
      return message.role === "user" || message.role === "system";
    case TrainOnWhat.CUSTOMIZED:
      return message.trainable === true;
  }
}

import type { EncodedTextChunk, ModelInput, ModelInputChunk } from "../client/types/model-input.js";
import type { Tokenizer } from "../tokenizers/types.js";

/** Plain text content. */
export interface TextPart {
  readonly type: "text";
  readonly text: string;
}

/** Model reasoning (rendered inside `<think>` blocks by formats that have them). */
export interface ThinkingPart {
  readonly type: "thinking";
  readonly thinking: string;
}

/** An image, as a URL / data URI or raw bytes (only vision renderers accept it). */
export interface ImagePart {
  readonly type: "image";
  readonly image: string | Uint8Array;
}

export type ContentPart = TextPart | ThinkingPart | ImagePart;

/** A parsed function call, OpenAI shape; `arguments` is a JSON string. */
export interface ToolCall {
  readonly type: "function";
  readonly id?: string;
  readonly function: { readonly name: string; readonly arguments: string };
}

/** A tool-call block the model emitted that could not be parsed. */
export interface UnparsedToolCall {
  /** The raw text, including its framing tags. */
  readonly rawText: string;
  /** Why it could not be parsed. */
  readonly error: string;
}

/** A tool the model may call (OpenAI function spec). */
export interface ToolSpec {
  readonly name: string;
  readonly description?: string;
  /** JSON schema of the arguments object. */
  readonly parameters?: Readonly<Record<string, unknown>>;
}

/** Message roles every chat renderer knows; some formats support only a subset. */
export type Role = "system" | "user" | "assistant" | "tool";

/** One chat message. */
export interface Message {
  readonly role: Role | (string & {});
  /** A string, or parts (text, thinking, image). */
  readonly content: string | readonly ContentPart[];
  readonly toolCalls?: readonly ToolCall[];
  readonly unparsedToolCalls?: readonly UnparsedToolCall[];
  /** Required on every message under `TrainOnWhat.CUSTOMIZED`, forbidden otherwise. */
  readonly trainable?: boolean;
  /** For `tool` messages: the call this answers. */
  readonly toolCallId?: string;
  /** For `tool` messages: the function name. */
  readonly name?: string;
}

/** Which tokens of a conversation get loss weight 1. String values are the cookbook's. */
export const TrainOnWhat = {
  LAST_ASSISTANT_MESSAGE: "last_assistant_message",
  LAST_ASSISTANT_TURN: "last_assistant_turn",
  ALL_ASSISTANT_MESSAGES: "all_assistant_messages",
  ALL_MESSAGES: "all_messages",
  ALL_TOKENS: "all_tokens",
  ALL_USER_AND_SYSTEM_MESSAGES: "all_user_and_system_messages",
  CUSTOMIZED: "customized",
} as const;
export type TrainOnWhat = (typeof TrainOnWhat)[keyof typeof TrainOnWhat];

/** How a sampled response ended. */
export const ParseTermination = {
  /** The renderer's own stop signal fired (e.g. `<|im_end|>`, `\n\nUser:`). */
  STOP_SEQUENCE: "stop_sequence",
  /** The tokenizer's EOS token ended the response (role_colon only). */
  EOS: "eos",
  /** Truncated output, repeated delimiters, or similar. */
  MALFORMED: "malformed",
} as const;
export type ParseTermination = (typeof ParseTermination)[keyof typeof ParseTermination];

/** True unless the response was malformed. */
export function isCleanTermination(t: ParseTermination): boolean {
  return t !== ParseTermination.MALFORMED;
}

/** Where a message sits in the conversation, given to `renderMessage`. */
export interface RenderContext {
  readonly idx: number;
  readonly isLast: boolean;
  readonly prevMessage: Message | undefined;
  readonly nextMessage: Message | undefined;
  /** Index of the last `user` message, -1 when there is none. */
  readonly lastUserIndex: number;
  /** True for messages after the last user message (the turn being produced). */
  readonly inLastAssistantTurn: boolean;
  /**
   * Index of the last user message that asks something, as the format counts it (Qwen: not a
   * message that only carries a `<tool_response>` block), -1 when there is none. The renderers
   * fill it in; a context without it means `lastUserIndex`.
   */
  readonly lastQueryIndex?: number;
}

/** One message as tokens: header (never trained except under ALL_TOKENS), output, stop overlap. */
export interface RenderedMessage {
  readonly header: EncodedTextChunk | undefined;
  readonly output: readonly ModelInputChunk[];
  /** Tokens appended only after the last message, e.g. role_colon's `User:`. */
  readonly stopOverlap: EncodedTextChunk | undefined;
}

/** Options of {@link Renderer.buildGenerationPrompt}. */
export interface GenerationPromptOptions {
  /** Role of the message to generate. Default `"assistant"`. */
  role?: string;
  /**
   * Text the response starts with, appended to the prompt. It is encoded together with the
   * prompt's last line, as one string (special tokens in it are honoured).
   */
  prefill?: string;
}

/** Options of {@link Renderer.buildSupervisedExample}. */
export interface SupervisedExampleOptions {
  trainOnWhat?: TrainOnWhat;
}

/** A full token sequence and one weight per token (unshifted). */
export interface SupervisedExample {
  readonly modelInput: ModelInput;
  readonly weights: Float32Array;
}

/** The message parsed from sampled tokens, and how the sample ended. */
export interface ParsedResponse {
  readonly message: Message;
  readonly termination: ParseTermination;
}

/** Converts chat messages to tokens (prompts, SFT examples) and sampled tokens back to messages. */
export interface Renderer {
  /** Registry name, e.g. `"qwen3"`. */
  readonly name: string;
  readonly tokenizer: Tokenizer;
  /** True when the generation prompt closes the think block (no reasoning is produced). */
  readonly disablesThinking: boolean;
  /** True when every turn's prompt is a prefix of the next turn's prompt. */
  readonly hasExtensionProperty: boolean;
  /** Tokens of one message in context. */
  renderMessage(message: Message, ctx: RenderContext): RenderedMessage;
  /** BOS, each message, then the header of the message to generate and the optional prefill. */
  buildGenerationPrompt(
    messages: readonly Message[],
    options?: GenerationPromptOptions,
  ): ModelInput;
  /** The full sequence and its weights. Default mode `LAST_ASSISTANT_MESSAGE`. */
  buildSupervisedExample(
    messages: readonly Message[],
    options?: SupervisedExampleOptions,
  ): SupervisedExample;
  /**
   * Examples for training on several assistant messages. Default mode `LAST_ASSISTANT_TURN`.
   * Without the extension property, one example per trained assistant message, each cut at it.
   */
  buildSupervisedExamples(
    messages: readonly Message[],
    options?: SupervisedExampleOptions,
  ): SupervisedExample[];
  /** Token ids for chat formats, strings for role_colon. */
  getStopSequences(): string[] | number[];
  /** Parse sampled tokens (including the stop token when present) back into a message. */
  parseResponse(tokens: ArrayLike<number>): ParsedResponse;
  /**
   * Messages that declare `tools` to the model, in this format's convention. `systemPrompt` is the
   * conversation's system message: leave it out when there is none; `""` is an empty one, which
   * some templates still frame (Qwen3 writes its blank line before the tools).
   */
  createConversationPrefixWithTools(tools: readonly ToolSpec[], systemPrompt?: string): Message[];
}

/** Builds a renderer for a tokenizer. */
export type RendererFactory = (tokenizer: Tokenizer) => Renderer;

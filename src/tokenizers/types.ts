/** A chat message as passed to a Jinja `chat_template` (HF conventions: snake_case keys). */
export type TemplateMessage = Readonly<Record<string, unknown>>;

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Add the tokenizer's BOS/EOS post-processing tokens (HF `add_special_tokens`). Default `true`. */
  addSpecialTokens?: boolean;
  /**
   * Treat special-token strings in `text` (e.g. `<|im_start|>`) as plain text instead of
   * mapping them to their ids (HF `split_special_tokens`). Default `false`.
   */
  splitSpecialTokens?: boolean;
}

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, chat markers) from the text. Default `false`. */
  skipSpecialTokens?: boolean;
}

/** Options of {@link Tokenizer.applyChatTemplate}. */
export interface ChatTemplateOptions {
  /** Append the header the model continues from (e.g. `<|im_start|>assistant\n`). Default `false`. */
  addGenerationPrompt?: boolean;
  /** Passed to templates that read `enable_thinking` (Qwen3). Omitted when undefined. */
  enableThinking?: boolean;
  /** Tool specs (OpenAI JSON-schema style) exposed to the template as `tools`. */
  tools?: readonly unknown[];
  /** Extra variables for the template. */
  extra?: Readonly<Record<string, unknown>>;
}

/** A text tokenizer with the subset of the HF API the cookbook needs. */
export interface Tokenizer {
  /** The id this tokenizer was loaded under (hub id, folder or registry name). */
  readonly name: string;
  /** Number of ids, including added tokens. */
  readonly vocabSize: number;
  readonly bosTokenId: number | undefined;
  readonly eosTokenId: number | undefined;
  readonly padTokenId: number | undefined;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  /** The Jinja chat template from `tokenizer_config.json`, when there is one. */
  readonly chatTemplate: string | undefined;
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** The id of a token string, or `undefined` when it is not in the vocabulary. */
  tokenToId(token: string): number | undefined;
  /** The token string of an id, or `undefined` when out of range. */
  idToToken(id: number): string | undefined;
  /** Whether `id` is a special (added, `special: true`) token. */
  isSpecialId(id: number): boolean;
  /** Render `messages` with the chat template into a string (no tokenization). */
  applyChatTemplate(messages: readonly TemplateMessage[], options?: ChatTemplateOptions): string;
}

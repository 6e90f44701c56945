import { Template } from "@huggingface/jinja";
import { Tokenizer as HfCore } from "@huggingface/tokenizers";
import { TinkerValidationError } from "../client/errors.js";
import { toNumberList } from "../client/types/number-lists.js";
import type {
  ChatTemplateOptions,
  DecodeOptions,
  EncodeOptions,
  TemplateMessage,
  Tokenizer,
} from "./types.js";

/** The parts of `tokenizer.json` this module reads (the rest is passed through untouched). */
interface TokenizerJson {
  added_tokens?: Array<{ id: number; content: string; special?: boolean }>;
  [key: string]: unknown;
}

/** The parts of `tokenizer_config.json` this module reads. */
export interface TokenizerConfigJson {
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  chat_template?: string | Array<{ name: string; template: string }> | null;
  [key: string]: unknown;
}

function tokenString(v: TokenizerConfigJson["bos_token"]): string | undefined {
  if (v === null || v === undefined) return undefined;
  return typeof v === "string" ? v : v.content;
}

function defaultTemplate(t: TokenizerConfigJson["chat_template"]): string | undefined {
  if (t === null || t === undefined) return undefined;
  if (typeof t === "string") return t;
  return (t.find((x) => x.name === "default") ?? t[0])?.template;
}

/**
 * A Hugging Face tokenizer (`tokenizer.json` + `tokenizer_config.json`) backed by
 * `@huggingface/tokenizers`, with `split_special_tokens` support and Jinja chat templates.
 */
export class HfTokenizer implements Tokenizer {
  readonly name: string;
  readonly vocabSize: number;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  readonly bosTokenId: number | undefined;
  readonly eosTokenId: number | undefined;
  readonly padTokenId: number | undefined;
  readonly chatTemplate: string | undefined;

  readonly #core: HfCore;
  readonly #json: TokenizerJson;
  readonly #config: TokenizerConfigJson;
  readonly #specialIds: Set<number>;
  #splitCore: HfCore | undefined;
  #template: Template | undefined;

  constructor(tokenizerJson: unknown, config: unknown, name = "tokenizer") {
    if (
      typeof tokenizerJson !== "object" ||
      tokenizerJson === null ||
      !("model" in tokenizerJson)
    ) {
      throw new TinkerValidationError(
        `tokenizer "${name}": tokenizer.json has no "model" section; pass the parsed contents of a Hugging Face tokenizer.json`,
        "tokenizerJson",
      );
    }
    this.name = name;
    this.#json = tokenizerJson as TokenizerJson;
    this.#config = (config ?? {}) as TokenizerConfigJson;
    this.#core = new HfCore(this.#json, this.#config);
    this.#specialIds = new Set(
      (this.#json.added_tokens ?? []).filter((t) => t.special === true).map((t) => t.id),
    );
    let maxId = -1;
    for (const id of this.#core.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    this.bosToken = tokenString(this.#config.bos_token);
    this.eosToken = tokenString(this.#config.eos_token);
    this.bosTokenId = this.bosToken === undefined ? undefined : this.tokenToId(this.bosToken);
    this.eosTokenId = this.eosToken === undefined ? undefined : this.tokenToId(this.eosToken);
    const pad = tokenString(this.#config.pad_token);
    this.padTokenId = pad === undefined ? undefined : this.tokenToId(pad);
    this.chatTemplate = defaultTemplate(this.#config.chat_template);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const core = options.splitSpecialTokens ? this.#splitSpecialCore() : this.#core;
    return core.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    if (ids.length === 0) return "";
    return this.#core.decode(Array.isArray(ids) ? ids : toNumberList(ids), {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      // HF fast tokenizers (and the cookbook) decode without this clean-up for chat models.
      clean_up_tokenization_spaces: false,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.#core.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#core.id_to_token(id);
  }

  isSpecialId(id: number): boolean {
    return this.#specialIds.has(id);
  }

  applyChatTemplate(
    messages: readonly TemplateMessage[],
    options: ChatTemplateOptions = {},
  ): string {
    if (this.chatTemplate === undefined) {
      throw new TinkerValidationError(
        `tokenizer "${this.name}" has no chat_template in tokenizer_config.json; use a renderer (getRenderer) instead`,
        "chatTemplate",
      );
    }
    this.#template ??= new Template(this.chatTemplate);
    const context: Record<string, unknown> = {
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      bos_token: this.bosToken ?? "",
      eos_token: this.eosToken ?? "",
      pad_token: tokenString(this.#config.pad_token) ?? "",
      ...options.extra,
    };
    if (options.tools !== undefined) context.tools = options.tools;
    if (options.enableThinking !== undefined) context.enable_thinking = options.enableThinking;
    return this.#template.render(context);
  }

  /**
   * HF `split_special_tokens=True`: special added tokens typed in the text are not matched and
   * go through normalisation, pre-tokenisation and the model like any other text. Non-special
   * added tokens (e.g. Qwen's `<think>`) still match. Implemented as a second core built
   * without the special added tokens; decoding always uses the full core.
   */
  #splitSpecialCore(): HfCore {
    if (this.#splitCore === undefined) {
      const added = (this.#json.added_tokens ?? []).filter((t) => t.special !== true);
      this.#splitCore = new HfCore({ ...this.#json, added_tokens: added }, this.#config);
    }
    return this.#splitCore;
  }
}

import { encodedText } from "../client/types/model-input.js";
import { BaseRenderer, type RendererCapabilities } from "./base.js";
import { getTextContent, pythonStrip } from "./content.js";
import { requireTokenId, textBeforeStopToken } from "./stop-token.js";
import type { Message, ParsedResponse, RenderContext, RenderedMessage } from "./types.js";

/**
 * Llama 3 instruct: `<|begin_of_text|>` then, per message,
 * `<|start_header_id|>{role}<|end_header_id|>\n\n` + `{content}<|eot_id|>`, token for token the
 * model's chat template rendered by Python's jinja2 and tokenized as one string: content is
 * stripped as Python's `str.strip()` does (the template's `trim`), and the text after
 * `<|end_header_id|>` is encoded together with the content. No "Cutting Knowledge Date" preamble
 * and no tool calls. One deliberate difference: `<|eot_id|>` typed inside content stays plain
 * text; `new Llama3Renderer(tokenizer, { specialTokensInContent: "tokens" })` follows the template.
 */
export class Llama3Renderer extends BaseRenderer {
  readonly name = "llama3";
  readonly capabilities: RendererCapabilities = {
    roles: ["system", "user", "assistant"],
    thinking: false,
    toolCalls: false,
    images: false,
  };
  readonly #eot: number;
  readonly #bos: number;

  constructor(...args: ConstructorParameters<typeof BaseRenderer>) {
    super(...args);
    this.#eot = requireTokenId(this.tokenizer, "<|eot_id|>", "llama3");
    this.#bos = requireTokenId(this.tokenizer, "<|begin_of_text|>", "llama3");
  }

  override get hasExtensionProperty(): boolean {
    return true;
  }

  protected override bosTokens(): number[] {
    return [this.#bos];
  }

  renderMessage(message: Message, _ctx: RenderContext): RenderedMessage {
    const { lead, content } = this.encodeJoined("\n\n", pythonStrip(getTextContent(message)));
    return {
      header: encodedText([
        ...this.encodeFraming(`<|start_header_id|>${message.role}<|end_header_id|>`),
        ...lead,
      ]),
      output: [encodedText([...content, this.#eot])],
      stopOverlap: undefined,
    };
  }

  protected generationSuffix(role: string, _ctx: RenderContext): string {
    return `<|start_header_id|>${role}<|end_header_id|>\n\n`;
  }

  getStopSequences(): number[] {
    return [this.#eot];
  }

  parseResponse(tokens: ArrayLike<number>): ParsedResponse {
    const { text, termination } = textBeforeStopToken(tokens, this.tokenizer, this.#eot);
    return { message: { role: "assistant", content: text }, termination };
  }
}

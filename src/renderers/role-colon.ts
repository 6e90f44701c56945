import { encodedText } from "../client/types/model-input.js";
import { BaseRenderer, type RendererCapabilities } from "./base.js";
import { getTextContent } from "./content.js";
import {
  type Message,
  type ParsedResponse,
  ParseTermination,
  type RenderContext,
  type RenderedMessage,
} from "./types.js";

const STOP = "\n\nUser:";

function capitalise(role: string): string {
  return role.charAt(0).toUpperCase() + role.slice(1);
}

/**
 * `User: …\n\nAssistant: …` for base models. Each message is the header `Role:` and the output
 * `" " + content + "\n\n"`; the trained last message is followed by `User:`, so the model learns
 * to end its turn with the stop string `"\n\nUser:"`.
 */
export class RoleColonRenderer extends BaseRenderer {
  readonly name = "role_colon";
  readonly capabilities: RendererCapabilities = {
    roles: ["system", "user", "assistant"],
    thinking: false,
    toolCalls: false,
    images: false,
  };
  override get hasExtensionProperty(): boolean {
    return true;
  }

  protected override bosTokens(): number[] {
    const id = this.tokenizer.bosTokenId;
    return id === undefined ? [] : [id];
  }

  renderMessage(message: Message, _ctx: RenderContext): RenderedMessage {
    return {
      header: this.chunk(`${capitalise(message.role)}:`),
      output: [encodedText(this.encodeContent(` ${getTextContent(message)}\n\n`))],
      stopOverlap: this.chunk("User:"),
    };
  }

  protected generationSuffix(role: string, _ctx: RenderContext): string {
    return `${capitalise(role)}:`;
  }

  getStopSequences(): string[] {
    return [STOP];
  }

  parseResponse(tokens: ArrayLike<number>): ParsedResponse {
    let ids = Array.from(tokens);
    const eos = this.tokenizer.eosTokenId;
    const endsWithEos = eos !== undefined && ids.length > 0 && ids[ids.length - 1] === eos;
    if (endsWithEos) ids = ids.slice(0, -1);
    const pieces = this.tokenizer.decode(ids).split(STOP);
    let termination: ParseTermination;
    if (pieces.length === 1)
      termination = endsWithEos ? ParseTermination.EOS : ParseTermination.MALFORMED;
    else if (pieces.length === 2 && !endsWithEos) termination = ParseTermination.STOP_SEQUENCE;
    else termination = ParseTermination.MALFORMED;
    let text = pieces[0] ?? "";
    if (text.startsWith(" ")) text = text.slice(1);
    if (text.endsWith("\n\n")) text = text.slice(0, -2);
    return { message: { role: "assistant", content: text }, termination };
  }
}

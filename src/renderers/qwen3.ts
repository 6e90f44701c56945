import { encodedText } from "../client/types/model-input.js";
import { BaseRenderer, type RendererCapabilities, type RendererOptions } from "./base.js";
import {
  getTextContent,
  getThinkingContent,
  parseToolArguments,
  pythonStrip,
  stripChars,
} from "./content.js";
import { pythonJson, pythonStr } from "./py-json.js";
import {
  contentFromBlocks,
  parseJsonToolCall,
  parseXmlToolCall,
  splitQwenBlocks,
} from "./qwen-blocks.js";
import { requireTokenId, textBeforeStopToken } from "./stop-token.js";
import type {
  Message,
  ParsedResponse,
  RenderContext,
  RenderedMessage,
  ToolCall,
  ToolSpec,
  UnparsedToolCall,
} from "./types.js";

const EMPTY_THINK = "<think>\n\n</think>\n\n";

function toolJson(tool: ToolSpec): string {
  return pythonJson({ type: "function", function: tool });
}

/**
 * The `<|im_start|>{role}\n…<|im_end|>` framing shared by the Qwen chat formats. Messages are
 * joined by `\n`, which belongs to the next message's header; consecutive `tool` messages form
 * one `user` block of `<tool_response>` sections. The text between `<|im_start|>` and
 * `<|im_end|>` is encoded as one string, as the template's output is, and message text is
 * encoded with special-token splitting, so `<|im_start|>` typed by a user is plain text.
 */
abstract class QwenChatRenderer extends BaseRenderer {
  protected readonly imEnd: number;

  constructor(...args: ConstructorParameters<typeof BaseRenderer>) {
    super(...args);
    this.imEnd = requireTokenId(this.tokenizer, "<|im_end|>", "qwen");
  }

  /** Message content as the template sees it (Qwen3.5 strips it). */
  protected messageText(m: Message): string {
    return getTextContent(m);
  }

  /** A user message that only carries a tool result is not the query the templates look for. */
  protected override isQuery(m: Message): boolean {
    const t = this.messageText(m);
    return !(t.startsWith("<tool_response>") && t.endsWith("</tool_response>"));
  }

  /** The template's `ns.last_query_index` (-1 instead of its `len - 1` when there is none). */
  protected lastQuery(ctx: RenderContext): number {
    return ctx.lastQueryIndex ?? ctx.lastUserIndex;
  }

  /**
   * One message: `marker` (text ending in `<|im_start|>`, or empty) and `lead` form the header,
   * `body` the output, encoded with `lead` as one string; `close` appends `<|im_end|>`.
   */
  private frame(marker: string, lead: string, body: string, close: boolean): RenderedMessage {
    const { lead: leadIds, content } = this.encodeJoined(lead, body);
    return {
      header: encodedText([...this.encodeFraming(marker), ...leadIds]),
      output: [encodedText(close ? [...content, this.imEnd] : content)],
      stopOverlap: undefined,
    };
  }

  /** The assistant body (think block, text, tool calls) without the header and `<|im_end|>`. */
  protected abstract renderAssistant(
    m: Message,
    ctx: RenderContext,
  ): { headerExtra: string; body: string };

  protected abstract renderToolCalls(m: Message, ctx: RenderContext, text: string): string;

  renderMessage(message: Message, ctx: RenderContext): RenderedMessage {
    const start = `${ctx.idx > 0 ? "\n" : ""}<|im_start|>`;
    if (message.role === "tool") {
      const opens = ctx.prevMessage?.role !== "tool";
      const body = `\n<tool_response>\n${this.messageText(message)}\n</tool_response>`;
      return this.frame(
        opens ? start : "",
        opens ? "user" : "",
        body,
        ctx.nextMessage?.role !== "tool",
      );
    }
    if (message.role === "assistant") {
      const { headerExtra, body } = this.renderAssistant(message, ctx);
      return this.frame(start, `assistant\n${headerExtra}`, body, true);
    }
    return this.frame(start, `${message.role}\n`, this.messageText(message), true);
  }

  getStopSequences(): number[] {
    return [this.imEnd];
  }

  /** Tokens the generation prompt ends with after the assistant header (a think prefill). */
  protected abstract assistantPrefill(): string;

  protected generationSuffix(role: string, ctx: RenderContext): string {
    const nl = ctx.idx > 0 ? "\n" : "";
    const prefill = role === "assistant" ? this.assistantPrefill() : "";
    return `${nl}<|im_start|>${role}\n${prefill}`;
  }

  protected abstract parseToolCall(body: string): ToolCall | UnparsedToolCall;

  /** Reasoning as parsed, before it becomes a thinking part. */
  protected cleanReasoning(r: string): string {
    return r;
  }

  /** Text as parsed (Qwen3.5 strips it, as it strips content when rendering). */
  protected cleanText(t: string): string {
    return t;
  }

  parseResponse(tokens: ArrayLike<number>): ParsedResponse {
    const { text, termination } = textBeforeStopToken(tokens, this.tokenizer, this.imEnd);
    const prefill = this.assistantPrefill();
    // The sampled tokens start after a `<think>\n` prefill: put it back so the block parses.
    const decoded =
      prefill === "<think>\n" &&
      !text.trimStart().startsWith("<think>") &&
      text.includes("</think>")
        ? prefill + text
        : text;
    const blocks = splitQwenBlocks(decoded);
    const reasoning =
      blocks.reasoning === undefined ? undefined : this.cleanReasoning(blocks.reasoning);
    const calls = blocks.toolCallBodies.map((b) => this.parseToolCall(b));
    const toolCalls = calls.filter((c): c is ToolCall => "function" in c);
    const unparsed = calls.filter((c): c is UnparsedToolCall => !("function" in c));
    if (blocks.unterminated !== undefined) {
      unparsed.push({ rawText: blocks.unterminated, error: "unterminated <tool_call> block" });
    }
    const message: Message = {
      role: "assistant",
      content: contentFromBlocks(reasoning, this.cleanText(blocks.text)),
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
      ...(unparsed.length > 0 ? { unparsedToolCalls: unparsed } : {}),
    };
    return { message, termination };
  }
}

/** Options of {@link Qwen3Renderer}. */
export interface Qwen3RendererOptions extends RendererOptions {
  /**
   * Drop reasoning from assistant turns before the last user message, as the chat template does
   * (default `true`). `false` keeps it and frames every assistant turn alike, which gives the
   * extension property (each prompt extends the previous turn's sequence) for multi-turn RL,
   * at the price of no longer matching the template. (As in the template's own tokenization, an
   * assistant text that starts with a newline merges with the header's `\n` into one token, so
   * such a turn's prompt is not a token prefix of the turn.)
   */
  stripThinkingFromHistory?: boolean;
}

/** Which of the Qwen3 chat templates a {@link Qwen3Renderer} reproduces. */
export type Qwen3Variant = "thinking" | "disable_thinking" | "instruct";

/**
 * Qwen3 (`qwen3`, `qwen3_disable_thinking`) and Qwen3-2507-Instruct (`qwen3_instruct`), token
 * for token the models' `chat_template` as Hugging Face applies it (Python's jinja2, the output
 * tokenized as one string; thinking: `enable_thinking` true / false; instruct: no think tags).
 * Reasoning is kept only on assistant turns after the last user query (a user message that only
 * carries a `<tool_response>` block does not count), where the template frames it as
 * `<think>\n{r}\n</think>\n\n` (the final turn always gets the block). Tool calls are
 * `<tool_call>\n{"name": …, "arguments": …}\n</tool_call>`, the arguments printed as Python's
 * `json.dumps` prints what `json.loads` read (`1.0` and long integers kept). One deliberate
 * difference: special-token text typed in content (`<|im_end|>`) stays plain text;
 * `new Qwen3Renderer(tokenizer, "thinking", { specialTokensInContent: "tokens" })` follows the
 * template.
 */
export class Qwen3Renderer extends QwenChatRenderer {
  readonly name: string;
  readonly variant: Qwen3Variant;
  readonly capabilities: RendererCapabilities;

  /** See {@link Qwen3RendererOptions.stripThinkingFromHistory}. */
  readonly stripThinkingFromHistory: boolean;

  constructor(
    tokenizer: ConstructorParameters<typeof BaseRenderer>[0],
    variant: Qwen3Variant = "thinking",
    options: Qwen3RendererOptions = {},
  ) {
    super(tokenizer, options);
    this.variant = variant;
    this.stripThinkingFromHistory = options.stripThinkingFromHistory ?? true;
    this.name =
      variant === "thinking"
        ? "qwen3"
        : variant === "instruct"
          ? "qwen3_instruct"
          : "qwen3_disable_thinking";
    this.capabilities = {
      roles: ["system", "user", "assistant", "tool"],
      thinking: variant !== "instruct",
      toolCalls: true,
      images: false,
    };
  }

  override get disablesThinking(): boolean {
    return this.variant === "disable_thinking";
  }

  override get hasExtensionProperty(): boolean {
    return this.variant === "instruct" || !this.stripThinkingFromHistory;
  }

  protected assistantPrefill(): string {
    return this.variant === "disable_thinking" ? EMPTY_THINK : "";
  }

  /** Split string content with an inline `</think>` the way the template does. */
  private reasoningAndText(m: Message): { reasoning: string; text: string } {
    if (typeof m.content === "string") {
      const c = m.content;
      if (this.variant !== "instruct" && c.includes("</think>")) {
        const pieces = c.split("</think>");
        const before = stripChars(pieces[0]!, "\n", "right").split("<think>");
        return {
          reasoning: stripChars(before[before.length - 1]!, "\n", "left"),
          text: stripChars(pieces[pieces.length - 1]!, "\n", "left"),
        };
      }
      return { reasoning: "", text: c };
    }
    return { reasoning: getThinkingContent(m), text: getTextContent(m) };
  }

  protected renderAssistant(m: Message, ctx: RenderContext): { headerExtra: string; body: string } {
    const { reasoning, text } = this.reasoningAndText(m);
    let body = text;
    // The template's `loop.index0 > ns.last_query_index` (never true without a user message);
    // keeping history frames every assistant turn alike, so each prompt extends the last one.
    const lastQuery = this.lastQuery(ctx);
    const framed =
      this.variant !== "instruct" &&
      lastQuery >= 0 &&
      (this.stripThinkingFromHistory
        ? ctx.idx > lastQuery && (ctx.isLast || reasoning.length > 0)
        : true);
    if (framed) {
      body = `<think>\n${stripChars(reasoning, "\n")}\n</think>\n\n${stripChars(text, "\n", "left")}`;
    }
    return { headerExtra: "", body: body + this.renderToolCalls(m, ctx, text) };
  }

  protected renderToolCalls(m: Message, ctx: RenderContext, text: string): string {
    const calls = m.toolCalls ?? [];
    return calls
      .map((call, k) => {
        const args = parseToolArguments(call, `messages[${ctx.idx}]`);
        const sep = k > 0 || text.length > 0 ? "\n" : "";
        return `${sep}<tool_call>\n{"name": "${call.function.name}", "arguments": ${pythonJson(args)}}\n</tool_call>`;
      })
      .join("");
  }

  protected parseToolCall(body: string): ToolCall | UnparsedToolCall {
    return parseJsonToolCall(body);
  }

  override createConversationPrefixWithTools(
    tools: readonly ToolSpec[],
    systemPrompt?: string,
  ): Message[] {
    const lines = tools.map((t) => `\n${toolJson(t)}`).join("");
    // The template writes `messages[0].content + '\n\n'` for any system message, even an empty one.
    const head = systemPrompt === undefined ? "" : `${systemPrompt}\n\n`;
    const content =
      `${head}# Tools\n\nYou may call one or more functions to assist with the user query.\n\n` +
      `You are provided with function signatures within <tools></tools> XML tags:\n<tools>${lines}\n</tools>\n\n` +
      "For each function call, return a json object with function name and arguments within " +
      '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>';
    return [{ role: "system", content }];
  }
}

/** Options of {@link Qwen35Renderer}. */
export interface Qwen35RendererOptions extends RendererOptions {
  /** Close the think block in the generation prompt (`qwen3_5_disable_thinking`). */
  disableThinking?: boolean;
}

/**
 * Qwen3.5 / Qwen3.6 (`qwen3_5`, `qwen3_5_disable_thinking`): the Qwen framing with content
 * stripped as Python's `str.strip()` does, a `<think>\n` prefill (or a closed empty block when
 * thinking is disabled), an empty `<think>\n\n</think>\n\n` in the header of every assistant
 * turn after the last user query that has no reasoning, and XML tool calls
 * `<tool_call>\n<function=f>\n<parameter=p>\nvalue\n</parameter>\n</function>\n</tool_call>`
 * (values as Python's `str()` prints them, containers as `json.dumps`). Special-token text in
 * content stays plain text unless `specialTokensInContent: "tokens"`.
 */
export class Qwen35Renderer extends QwenChatRenderer {
  readonly name: string;
  readonly capabilities: RendererCapabilities = {
    roles: ["system", "user", "assistant", "tool"],
    thinking: true,
    toolCalls: true,
    images: false,
  };
  readonly #disableThinking: boolean;

  constructor(
    tokenizer: ConstructorParameters<typeof BaseRenderer>[0],
    options: Qwen35RendererOptions = {},
  ) {
    super(tokenizer, options);
    this.#disableThinking = options.disableThinking ?? false;
    this.name = this.#disableThinking ? "qwen3_5_disable_thinking" : "qwen3_5";
  }

  override get disablesThinking(): boolean {
    return this.#disableThinking;
  }

  protected assistantPrefill(): string {
    return this.#disableThinking ? EMPTY_THINK : "<think>\n";
  }

  protected override messageText(m: Message): string {
    return pythonStrip(getTextContent(m));
  }

  protected override cleanReasoning(r: string): string {
    return pythonStrip(r);
  }

  protected override cleanText(t: string): string {
    return pythonStrip(t);
  }

  protected renderAssistant(m: Message, ctx: RenderContext): { headerExtra: string; body: string } {
    const text = this.messageText(m);
    const reasoning = pythonStrip(getThinkingContent(m));
    const produced = ctx.idx > this.lastQuery(ctx);
    let body = text;
    let headerExtra = "";
    if (produced && reasoning.length > 0) body = `<think>\n${reasoning}\n</think>\n\n${text}`;
    else if (produced) headerExtra = EMPTY_THINK;
    return { headerExtra, body: body + this.renderToolCalls(m, ctx, text) };
  }

  protected renderToolCalls(m: Message, ctx: RenderContext, text: string): string {
    const calls = m.toolCalls ?? [];
    if (calls.length === 0) return "";
    const blocks = calls.map((call) => {
      const args = parseToolArguments(call, `messages[${ctx.idx}]`);
      const params = args.entries
        .map(([k, v]) => `<parameter=${k}>\n${pythonStr(v)}\n</parameter>\n`)
        .join("");
      return `<tool_call>\n<function=${call.function.name}>\n${params}</function>\n</tool_call>`;
    });
    return (text.length > 0 ? "\n\n" : "") + blocks.join("\n");
  }

  protected parseToolCall(body: string): ToolCall | UnparsedToolCall {
    return parseXmlToolCall(body);
  }

  override createConversationPrefixWithTools(
    tools: readonly ToolSpec[],
    systemPrompt?: string,
  ): Message[] {
    const lines = tools.map((t) => `\n${toolJson(t)}`).join("");
    const block =
      `# Tools\n\nYou have access to the following functions:\n\n<tools>${lines}\n</tools>\n\n` +
      "If you choose to call a function ONLY reply in the following format with NO suffix:\n\n" +
      "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n" +
      "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n" +
      "</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n" +
      "- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n" +
      "- Required parameters MUST be specified\n" +
      "- You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\n" +
      "- If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\n" +
      "</IMPORTANT>";
    const sys = pythonStrip(systemPrompt ?? "");
    return [{ role: "system", content: sys.length > 0 ? `${block}\n\n${sys}` : block }];
  }
}

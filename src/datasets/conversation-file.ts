import { TinkerValidationError } from "../client/errors.js";
import type { ContentPart, Message, ToolCall } from "../renderers/types.js";
import { ShuffledBatches } from "./batching.js";
import type { OnBadRow, SkippedRow } from "./errors.js";
import { describe, expectObject, readJsonl } from "./jsonl.js";
import { seededShuffle } from "./prng.js";

/** A chat conversation, as stored in a `{"messages": [...]}` row. */
export type Conversation = readonly Message[];

/** Options of {@link ConversationFileDataset.load}. */
export interface ConversationFileOptions {
  /** Rows held out as the test split (taken from the front of the shuffled rows). Default 0. */
  testSize?: number;
  /** Seed of the shuffle before the split. Default 0. */
  shuffleSeed?: number;
  /** Default `"error"`. */
  onBadRow?: OnBadRow;
}

/**
 * Conversations from a JSONL file whose rows are `{"messages": [{"role", "content"}, ...]}` (the
 * cookbook's `FromConversationFileBuilder` format). Rows are shuffled with `shuffleSeed`, and the first
 * `testSize` of them become the test split.
 */
export class ConversationFileDataset {
  readonly path: string;
  readonly train: readonly Conversation[];
  readonly test: readonly Conversation[];
  /** Malformed rows skipped under `onBadRow: "skip"`. */
  readonly skipped: number;
  readonly skippedRows: readonly SkippedRow[];

  private constructor(
    path: string,
    train: Conversation[],
    test: Conversation[],
    skipped: number,
    skippedRows: SkippedRow[],
  ) {
    this.path = path;
    this.train = train;
    this.test = test;
    this.skipped = skipped;
    this.skippedRows = skippedRows;
  }

  /** Read, validate, shuffle and split the file. */
  static async load(
    path: string,
    options: ConversationFileOptions = {},
  ): Promise<ConversationFileDataset> {
    const testSize = options.testSize ?? 0;
    if (!Number.isInteger(testSize) || testSize < 0) {
      throw new TinkerValidationError(
        `testSize must be a non-negative integer, got ${testSize}`,
        "testSize",
      );
    }
    const { rows, skipped, skippedRows } = await readJsonl(path, {
      parse: parseConversationRow,
      onBadRow: options.onBadRow ?? "error",
    });
    if (testSize > rows.length) {
      throw new TinkerValidationError(
        `testSize ${testSize} is larger than the ${rows.length} conversations in ${path}`,
        "testSize",
      );
    }
    const shuffled = seededShuffle(rows, options.shuffleSeed ?? 0);
    return new ConversationFileDataset(
      path,
      shuffled.slice(testSize),
      shuffled.slice(0, testSize),
      skipped,
      skippedRows,
    );
  }

  /** Training batches (drop-last, reshuffled per epoch with `seed`). */
  trainBatches(
    batchSize: number,
    options: { seed?: number; dropLast?: boolean } = {},
  ): ShuffledBatches<Conversation> {
    return new ShuffledBatches(this.train, { batchSize, ...options });
  }
}

/** Validate one `{"messages": [...]}` row (snake_case `tool_calls` / `tool_call_id` accepted). */
export function parseConversationRow(value: unknown): Conversation {
  const row = expectObject(value);
  const messages = row["messages"];
  if (!Array.isArray(messages)) {
    throw new Error(`expected {"messages": [...]}, but "messages" is ${describe(messages)}`);
  }
  if (messages.length === 0) throw new Error(`"messages" is empty`);
  return messages.map((m, i) => parseMessage(m, i));
}

function parseMessage(value: unknown, i: number): Message {
  const at = `messages[${i}]`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${at} must be an object, got ${describe(value)}`);
  }
  const m = value as Record<string, unknown>;
  if (typeof m["role"] !== "string" || m["role"] === "") {
    throw new Error(`${at}.role must be a non-empty string, got ${describe(m["role"])}`);
  }
  const content = parseContent(m["content"], at);
  const out: {
    role: string;
    content: string | ContentPart[];
    toolCalls?: ToolCall[];
    toolCallId?: string;
    name?: string;
    trainable?: boolean;
  } = { role: m["role"], content };
  const toolCalls = m["tool_calls"] ?? m["toolCalls"];
  if (toolCalls !== undefined && toolCalls !== null) {
    if (!Array.isArray(toolCalls)) throw new Error(`${at}.tool_calls must be an array`);
    out.toolCalls = toolCalls.map((tc, j) => parseToolCall(tc, `${at}.tool_calls[${j}]`));
  }
  const toolCallId = m["tool_call_id"] ?? m["toolCallId"];
  if (typeof toolCallId === "string") out.toolCallId = toolCallId;
  if (typeof m["name"] === "string") out.name = m["name"];
  if (typeof m["trainable"] === "boolean") out.trainable = m["trainable"];
  return out;
}

function parseContent(value: unknown, at: string): string | ContentPart[] {
  if (typeof value === "string") return value;
  if (value === null || value === undefined) return "";
  if (!Array.isArray(value)) {
    throw new Error(`${at}.content must be a string or a list of parts, got ${describe(value)}`);
  }
  return value.map((p, j) => {
    const part = p as Record<string, unknown> | null;
    const where = `${at}.content[${j}]`;
    if (part?.["type"] === "text" && typeof part["text"] === "string") {
      return { type: "text", text: part["text"] };
    }
    if (part?.["type"] === "thinking" && typeof part["thinking"] === "string") {
      return { type: "thinking", thinking: part["thinking"] };
    }
    if (part?.["type"] === "image" && typeof part["image"] === "string") {
      return { type: "image", image: part["image"] };
    }
    throw new Error(`${where} must be {"type":"text","text"}, {"type":"thinking",...} or an image`);
  });
}

function parseToolCall(value: unknown, at: string): ToolCall {
  const tc = value as { id?: unknown; function?: { name?: unknown; arguments?: unknown } } | null;
  const fn = tc?.function;
  if (typeof fn?.name !== "string") throw new Error(`${at}.function.name must be a string`);
  const args = typeof fn.arguments === "string" ? fn.arguments : JSON.stringify(fn.arguments ?? {});
  return {
    type: "function",
    ...(typeof tc?.id === "string" ? { id: tc.id } : {}),
    function: { name: fn.name, arguments: args },
  };
}

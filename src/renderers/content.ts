import { TinkerValidationError } from "../client/errors.js";
import type { ContentPart, Message, ToolCall } from "./types.js";

/** The text of a message: its string content, or its text parts joined (thinking dropped). */
export function getTextContent(message: Message): string {
  const c = message.content;
  if (typeof c === "string") return c;
  let out = "";
  for (const p of c) if (p.type === "text") out += p.text;
  return out;
}

/** The reasoning of a message: its thinking parts joined (empty when there are none). */
export function getThinkingContent(message: Message): string {
  const c = message.content;
  if (typeof c === "string") return "";
  let out = "";
  for (const p of c) if (p.type === "thinking") out += p.thinking;
  return out;
}

/** Whether the message carries a thinking part (even an empty one). */
export function hasThinkingPart(message: Message): boolean {
  return typeof message.content !== "string" && message.content.some((p) => p.type === "thinking");
}

/** Whether the message carries an image part. */
export function hasImagePart(message: Message): boolean {
  return typeof message.content !== "string" && message.content.some((p) => p.type === "image");
}

/** Content as parts (a string becomes one text part). */
export function contentParts(message: Message): readonly ContentPart[] {
  return typeof message.content === "string"
    ? [{ type: "text", text: message.content }]
    : message.content;
}

/**
 * JSON in the layout of Python's `json.dumps(x, ensure_ascii=False)` (and Jinja's `tojson` in HF
 * chat templates): `", "` between items and `": "` after keys, key order preserved.
 */
export function pythonJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(", ")}]`;
  if (typeof value === "object") {
    const items = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${JSON.stringify(k)}: ${pythonJson(v)}`);
    return `{${items.join(", ")}}`;
  }
  return JSON.stringify(value);
}

/** Parse a tool call's JSON `arguments`, naming the call when it is not a JSON object. */
export function parseToolArguments(call: ToolCall, where: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = call.function.arguments === "" ? {} : JSON.parse(call.function.arguments);
  } catch {
    throw new TinkerValidationError(
      `${where}: tool call "${call.function.name}" has arguments that are not valid JSON; pass arguments as a JSON object string, e.g. '{"x": 1}'`,
      `${where}.toolCalls`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new TinkerValidationError(
      `${where}: tool call "${call.function.name}" must have a JSON object as arguments`,
      `${where}.toolCalls`,
    );
  }
  return parsed as Record<string, unknown>;
}

/** Python's `str.strip(chars)` for a set of characters. */
export function stripChars(
  s: string,
  chars: string,
  side: "both" | "left" | "right" = "both",
): string {
  let start = 0;
  let end = s.length;
  if (side !== "right") while (start < end && chars.includes(s[start]!)) start++;
  if (side !== "left") while (end > start && chars.includes(s[end - 1]!)) end--;
  return s.slice(start, end);
}

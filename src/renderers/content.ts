import { TinkerValidationError } from "../client/errors.js";
import { type PyJson, PyObject, parseJson } from "./py-json.js";
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
 * Parse a tool call's JSON `arguments` as Python's `json.loads` reads them (number literals and
 * key order kept), naming the call when they are not a JSON object.
 */
export function parseToolArguments(call: ToolCall, where: string): PyObject {
  let parsed: PyJson;
  try {
    parsed = call.function.arguments === "" ? new PyObject([]) : parseJson(call.function.arguments);
  } catch {
    throw new TinkerValidationError(
      `${where}: tool call "${call.function.name}" has arguments that are not valid JSON; pass arguments as a JSON object string, e.g. '{"x": 1}'`,
      `${where}.toolCalls`,
    );
  }
  if (!(parsed instanceof PyObject)) {
    throw new TinkerValidationError(
      `${where}: tool call "${call.function.name}" must have a JSON object as arguments`,
      `${where}.toolCalls`,
    );
  }
  return parsed;
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

/** The characters Python's `str.isspace()` accepts: what `str.strip()` and Jinja's `trim` remove. */
const PYTHON_WHITESPACE =
  "\t\n\v\f\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";

/**
 * Python's `str.strip()`, which chat templates' `trim` is. JavaScript's `trim()` differs: it
 * removes U+FEFF (Python keeps it) and keeps U+0085 and U+001C-U+001F (Python removes them).
 */
export function pythonStrip(s: string, side: "both" | "left" | "right" = "both"): string {
  return stripChars(s, PYTHON_WHITESPACE, side);
}

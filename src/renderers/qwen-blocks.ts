import { stripChars } from "./content.js";
import { compactJson, type PyJson, PyObject, parseJson } from "./py-json.js";
import type { ContentPart, ToolCall, UnparsedToolCall } from "./types.js";

/** A response split into reasoning, text and raw tool-call blocks. */
export interface QwenBlocks {
  /** Reasoning inside `<think>…</think>`, `undefined` when there was no block. */
  readonly reasoning: string | undefined;
  /** Text outside the think block and the tool-call blocks. */
  readonly text: string;
  /** Inner text of each complete `<tool_call>…</tool_call>` block, in order. */
  readonly toolCallBodies: readonly string[];
  /** A `<tool_call>` that was opened but never closed. */
  readonly unterminated: string | undefined;
}

const OPEN_CALL = "<tool_call>";
const CLOSE_CALL = "</tool_call>";

/**
 * Split decoded Qwen output (stop token removed) the way the chat template framed it:
 * `<think>\n{r}\n</think>\n\n{text}` then `\n<tool_call>…</tool_call>` blocks joined by `\n`.
 */
export function splitQwenBlocks(decoded: string): QwenBlocks {
  let rest = decoded;
  let reasoning: string | undefined;
  const close = rest.indexOf("</think>");
  if (close >= 0) {
    const before = rest.slice(0, close);
    const open = before.lastIndexOf("<think>");
    reasoning = stripChars(open >= 0 ? before.slice(open + "<think>".length) : before, "\n");
    rest = stripChars(rest.slice(close + "</think>".length), "\n", "left");
  }
  const bodies: string[] = [];
  let text = "";
  let unterminated: string | undefined;
  for (;;) {
    const start = rest.indexOf(OPEN_CALL);
    if (start < 0) {
      text += bodies.length > 0 ? stripChars(rest, "\n") : rest;
      break;
    }
    let before = rest.slice(0, start);
    // The template writes one "\n" before each call (before the first only after text).
    if (before.endsWith("\n")) before = before.slice(0, -1);
    text += before;
    const end = rest.indexOf(CLOSE_CALL, start);
    if (end < 0) {
      unterminated = rest.slice(start);
      break;
    }
    bodies.push(rest.slice(start + OPEN_CALL.length, end));
    rest = rest.slice(end + CLOSE_CALL.length);
  }
  return { reasoning, text, toolCallBodies: bodies, unterminated };
}

/**
 * Qwen3 JSON tool call: `\n{"name": …, "arguments": {…}}\n`. The arguments come back as compact
 * JSON with every number as the model wrote it (`1.0`, long integers), so rendering the parsed
 * call again gives the model's text back.
 */
export function parseJsonToolCall(body: string): ToolCall | UnparsedToolCall {
  const raw = `${OPEN_CALL}${body}${CLOSE_CALL}`;
  let parsed: PyJson;
  try {
    parsed = parseJson(body.trim());
  } catch (err) {
    return { rawText: raw, error: `invalid JSON in tool call: ${String(err)}` };
  }
  if (!(parsed instanceof PyObject)) {
    return { rawText: raw, error: "tool call is not a JSON object" };
  }
  const fields = new Map(parsed.entries);
  const name = fields.get("name");
  const args = fields.get("arguments");
  if (typeof name !== "string" || name.length === 0) {
    return { rawText: raw, error: 'tool call has no "name"' };
  }
  const argText = typeof args === "string" ? args : args === undefined ? "{}" : compactJson(args);
  return { type: "function", function: { name, arguments: argText } };
}

const FUNCTION_RE = /^\s*<function=([^>\n]+)>\s*([\s\S]*?)\s*<\/function>\s*$/;
const PARAM_RE = /<parameter=([^>\n]+)>\n?([\s\S]*?)\n?<\/parameter>/g;

function parseParamValue(text: string): PyJson {
  if (text === "True") return true;
  if (text === "False") return false;
  if (text === "None") return null;
  try {
    return parseJson(text);
  } catch {
    return text;
  }
}

/** Qwen3.5 XML tool call: `<function=name><parameter=p>\nvalue\n</parameter></function>`. */
export function parseXmlToolCall(body: string): ToolCall | UnparsedToolCall {
  const raw = `${OPEN_CALL}${body}${CLOSE_CALL}`;
  const m = FUNCTION_RE.exec(body);
  if (m === null) return { rawText: raw, error: "malformed <function=…> block" };
  const name = m[1]!.trim();
  const inner = m[2]!;
  const args: Array<[string, PyJson]> = [];
  let consumed = 0;
  for (const p of inner.matchAll(PARAM_RE)) {
    if (inner.slice(consumed, p.index).trim() !== "") {
      return { rawText: raw, error: "unexpected text between <parameter> blocks" };
    }
    args.push([p[1]!.trim(), parseParamValue(p[2]!)]);
    consumed = p.index + p[0].length;
  }
  if (inner.slice(consumed).trim() !== "") {
    return { rawText: raw, error: "unexpected text after the last <parameter> block" };
  }
  return { type: "function", function: { name, arguments: compactJson(new PyObject(args)) } };
}

/** Message content from blocks: a string, or `[thinking, text]` parts when there was reasoning. */
export function contentFromBlocks(
  reasoning: string | undefined,
  text: string,
): string | ContentPart[] {
  if (reasoning === undefined || reasoning.length === 0) return text;
  const parts: ContentPart[] = [{ type: "thinking", thinking: reasoning }];
  if (text.length > 0) parts.push({ type: "text", text });
  return parts;
}

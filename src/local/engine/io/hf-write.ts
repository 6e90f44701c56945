import { copyFile, open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeDirAtomic } from "../../../fs/atomic.js";
import type { ModelConfig } from "../model/config.js";
import { toHfConfig } from "./hf-config.js";
import { checkHfWeights } from "./hf-folder.js";
import { encodeSafetensorsChunks, type FloatDtype, type TensorToWrite } from "./safetensors.js";

/** Options of {@link writeHfModelFolder}. */
export interface WriteHfModelOptions {
  config: ModelConfig;
  /** Weights in Hugging Face naming (see `hfWeightShapes`); checked before anything is written. */
  weights: ReadonlyMap<string, TensorToWrite>;
  /** Folder whose `tokenizer.json` / `tokenizer_config.json` (and chat template files) are copied. */
  tokenizerDir?: string;
  /** Storage format of the weights. Default F32. */
  dtype?: FloatDtype;
  /** Split into `model-0000i-of-0000n.safetensors` + index when larger than this. Default: never. */
  maxShardBytes?: number;
}

/**
 * Write a Hugging Face model folder (`config.json`, safetensors weights, tokenizer files) that
 * transformers and {@link loadHfModelFolder} can load. The folder appears atomically.
 */
export async function writeHfModelFolder(dir: string, opts: WriteHfModelOptions): Promise<void> {
  checkHfWeights(opts.config, opts.weights, dir);
  const elem = (opts.dtype ?? "F32") === "F32" ? 4 : 2;
  const names = [...opts.weights.keys()].sort();
  const shards: string[][] = [[]];
  let size = 0;
  for (const name of names) {
    const bytes = (opts.weights.get(name)?.data.length ?? 0) * elem;
    const current = shards[shards.length - 1] as string[];
    if (
      opts.maxShardBytes !== undefined &&
      current.length > 0 &&
      size + bytes > opts.maxShardBytes
    ) {
      shards.push([name]);
      size = bytes;
    } else {
      current.push(name);
      size += bytes;
    }
  }
  await writeDirAtomic(dir, async (tmp) => {
    await writeFile(
      join(tmp, "config.json"),
      `${JSON.stringify(toHfConfig(opts.config), null, 2)}\n`,
    );
    const dtypeOpt = { dtype: opts.dtype ?? "F32" };
    const pick = (list: string[]) =>
      new Map(list.map((n) => [n, opts.weights.get(n) as TensorToWrite]));
    if (shards.length === 1) {
      await writeChunks(
        join(tmp, "model.safetensors"),
        encodeSafetensorsChunks(pick(names), { format: "pt" }, dtypeOpt),
      );
    } else {
      const weightMap: Record<string, string> = {};
      let total = 0;
      const pad = (i: number) => String(i).padStart(5, "0");
      for (const [i, list] of shards.entries()) {
        const file = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
        await writeChunks(
          join(tmp, file),
          encodeSafetensorsChunks(pick(list), { format: "pt" }, dtypeOpt),
        );
        for (const n of list) {
          weightMap[n] = file;
          total += (opts.weights.get(n)?.data.length ?? 0) * elem;
        }
      }
      const index = { metadata: { total_size: total }, weight_map: weightMap };
      await writeFile(
        join(tmp, "model.safetensors.index.json"),
        `${JSON.stringify(index, null, 2)}\n`,
      );
    }
    if (opts.tokenizerDir) {
      for (const f of [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "chat_template.jinja",
      ]) {
        await copyFile(join(opts.tokenizerDir, f), join(tmp, f)).catch(
          (err: NodeJS.ErrnoException) => {
            if (err.code !== "ENOENT" || f === "tokenizer.json") throw err;
          },
        );
      }
    }
  });
}

async function writeChunks(path: string, chunks: Uint8Array[]): Promise<void> {
  const fh = await open(path, "wx");
  try {
    for (const c of chunks) {
      let off = 0;
      while (off < c.byteLength) off += (await fh.write(c, off, c.byteLength - off)).bytesWritten;
    }
  } finally {
    await fh.close();
  }
}

/**
 * Where tests and benchmarks find the team's shared reference data: the `shared/` folder beside the
 * checkout (as in CI), or `TINKER_TS_SHARED_DIR`. Library code never reads it.
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export const SHARED_DIR = process.env.TINKER_TS_SHARED_DIR ?? resolve(repoRoot, "../shared");
/** GSM8K JSONL files: `train.jsonl` (7,473 rows) and `test.jsonl` (1,319 rows). */
export const GSM8K_DIR = join(SHARED_DIR, "data/gsm8k");
/** Recorded requests of the official Python SDK. */
export const WIRE_DIR = join(SHARED_DIR, "reference/wire");

/**
 * Where tests and benchmarks find the data files the repository ships under `test/fixtures`
 * (GSM8K with its MIT LICENSE, the official SDK's recorded requests). Nothing outside the clone
 * is read, so `git clone && npm ci && npm test` passes on its own.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const FIXTURES_DIR = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
/** GSM8K JSONL files: `train.jsonl` (7,473 rows) and `test.jsonl` (1,319 rows), MIT (LICENSE beside them). */
export const GSM8K_DIR = join(FIXTURES_DIR, "gsm8k");
/** Recorded requests of the official Python SDK 0.25.0 and 0.24.1 (see `fixtures/wire/README.md`). */
export const WIRE_DIR = join(FIXTURES_DIR, "wire");

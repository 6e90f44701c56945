import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { WIRE_DIR } from "../fixture-paths.js";

/** One recorded request of the official Python SDK (see test/fixtures/wire/README.md). */
export interface WireRecord {
  method: string;
  path: string;
  headers: Array<[string, string]>;
  body?: unknown;
  body_hex?: string;
  body_len?: number;
  response: {
    status: number;
    body?: unknown;
    content_type?: string;
    proto_hex?: string;
  };
}

const _repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The recorded fixtures ship in test/fixtures/wire; TINKER_WIRE_FIXTURES points elsewhere. */
export function fixtureDir(): string {
  const dir = process.env.TINKER_WIRE_FIXTURES ?? WIRE_DIR;
  if (!existsSync(dir)) {
    throw new Error(`wire fixtures not found at ${dir}; set TINKER_WIRE_FIXTURES`);
  }
  return dir;
}

export function loadWireLog(version: "0.25.0" | "0.24.1"): WireRecord[] {
  const text = readFileSync(resolve(fixtureDir(), `wire-log-${version}.jsonl`), "utf8");
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as WireRecord);
}

export function header(rec: WireRecord, name: string): string | undefined {
  return rec.headers.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function fromHex(h: string): Uint8Array {
  return new Uint8Array(Buffer.from(h, "hex"));
}

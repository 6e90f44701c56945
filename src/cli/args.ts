/**
 * What every `tinker-ts` command shares: flag parsing with `node:util` parseArgs (built in, strict,
 * typed values: no dependency needed for flat flags), typed flag readers, and the exit-code rule:
 * 0 success, 1 failure, 2 usage error, each error in one line that names the fix.
 */
import { parseArgs } from "node:util";
import { APIStatusError, TinkerError } from "../client/errors.js";

/** Exit codes of every command. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** A bad command line: exit code 2, with a pointer to `--help`. */
export class UsageError extends Error {}

/** The flags of a command, in parseArgs' form. */
export type FlagSpec = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
>;

type FlagValue<O> = O extends { type: "boolean" }
  ? O extends { multiple: true }
    ? boolean[]
    : boolean
  : O extends { multiple: true }
    ? string[]
    : string;

/** The parsed values of a {@link FlagSpec} (absent flags are undefined). */
export type FlagValues<T extends FlagSpec> = { [K in keyof T]?: FlagValue<T[K]> };

/** Parse `argv` strictly (unknown flags and missing values are usage errors). */
export function parseFlags<T extends FlagSpec>(
  argv: readonly string[],
  options: T,
  positionals: { min: number; max: number; name?: string },
): { values: FlagValues<T>; positionals: string[] } {
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const n = parsed.positionals.length;
  if (parsed.values.help !== true && (n < positionals.min || n > positionals.max)) {
    throw new UsageError(
      n < positionals.min
        ? `missing ${positionals.name ?? "argument"}`
        : `unexpected argument "${parsed.positionals[positionals.max]}"`,
    );
  }
  return { values: parsed.values as FlagValues<T>, positionals: parsed.positionals };
}

/** An integer flag in `[min, max]`, or `fallback` when absent. */
export function intFlag(
  name: string,
  raw: string | undefined,
  fallback: number,
  range: { min: number; max?: number } = { min: 0 },
): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  if (raw.trim() === "" || !Number.isInteger(v) || v < range.min || v > max) {
    const bound = range.max === undefined ? `>= ${range.min}` : `in ${range.min}..${range.max}`;
    throw new UsageError(`--${name} must be an integer ${bound}, got "${raw}"`);
  }
  return v;
}

/** A finite number flag >= `min`, or `fallback` when absent. */
export function numberFlag(
  name: string,
  raw: string | undefined,
  fallback: number,
  min = 0,
): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v) || v < min) {
    throw new UsageError(`--${name} must be a number >= ${min}, got "${raw}"`);
  }
  return v;
}

/**
 * `err` as one line (messages with newlines are joined). A server's refusal shows its `detail`
 * text and status rather than the JSON body.
 */
export function oneLine(err: unknown): string {
  let text = err instanceof Error ? err.message : String(err);
  if (err instanceof APIStatusError) {
    const body = err.body as { detail?: unknown } | undefined;
    if (typeof body?.detail === "string") text = `${body.detail} (server said ${err.status})`;
  }
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/**
 * Run a command body: `--help` text on stdout, a {@link UsageError} as one line plus a pointer to
 * `--help` (exit 2), any other error as one line (exit 1).
 */
export async function runCommand(
  name: string,
  body: () => Promise<number>,
  stderr: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      stderr.write(`tinker-ts ${name}: ${oneLine(err)} (see tinker-ts ${name} --help)\n`);
      return EXIT.usage;
    }
    const kind = err instanceof TinkerError || err instanceof Error ? "" : "unexpected: ";
    stderr.write(`tinker-ts ${name}: ${kind}${oneLine(err)}\n`);
    return EXIT.failure;
  }
}

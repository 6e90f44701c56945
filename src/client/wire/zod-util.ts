/** Small zod helpers shared by the wire schemas: null-tolerant optionals and error formatting. */

import { z } from "zod";

/** Optional on the wire: absent or `null` both read as `undefined`. */
export function opt<T extends z.ZodType>(schema: T) {
  return schema.nullish().transform((v): z.output<T> | undefined => v ?? undefined);
}

/** Optional with a default: absent or `null` read as `fallback`. */
export function dflt<T extends z.ZodType>(schema: T, fallback: z.output<T>) {
  return schema.nullish().transform((v): z.output<T> => (v ?? fallback) as z.output<T>);
}

/** A JSON integer (also accepts integral floats such as `3.0`). */
export const int = () => z.number().int();

/** `a.b[0].c` from a zod issue path. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

/** The first issue as `field: message`, plus how many more there were. */
export function describeIssues(error: z.ZodError): { field: string; message: string } {
  const first = error.issues[0];
  if (!first) return { field: "", message: "invalid value" };
  const field = formatPath(first.path);
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problems)` : "";
  return { field, message: `${field || "<root>"}: ${first.message}${more}` };
}

/**
 * A JSON list of numbers, checked in one plain loop. `z.array(z.number())` runs a schema per
 * element, which dominates parsing of large tensors; this reports the first bad index instead.
 */
export function numberList(opts: { int?: boolean; min?: number; max?: number } = {}) {
  const {
    int: wantInt = false,
    min = Number.NEGATIVE_INFINITY,
    max = Number.POSITIVE_INFINITY,
  } = opts;
  const what = `${wantInt ? "an integer" : "a number"}${
    Number.isFinite(min) || Number.isFinite(max) ? ` in [${min}, ${max}]` : ""
  }`;
  return z.unknown().transform((v, ctx): number[] => {
    if (!Array.isArray(v)) {
      ctx.issues.push({ code: "custom", message: `expected a list of numbers`, input: v });
      return z.NEVER;
    }
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (
        typeof x !== "number" ||
        !Number.isFinite(x) ||
        (wantInt && !Number.isInteger(x)) ||
        x < min ||
        x > max
      ) {
        ctx.issues.push({
          code: "custom",
          message:
            typeof x === "number" && !Number.isFinite(x)
              ? `expected ${what}, got ${x}, which is not finite`
              : `expected ${what}, got ${JSON.stringify(x)}`,
          input: x,
          path: [i],
        });
        return z.NEVER;
      }
    }
    return v as number[];
  });
}

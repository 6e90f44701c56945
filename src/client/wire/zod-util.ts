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

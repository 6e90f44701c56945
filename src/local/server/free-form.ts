import { TinkerValidationError } from "../../client/errors.js";

/** Limits on client-chosen data the server stores and lists back (metadata, tags, ids). */
export const FREE_FORM_LIMITS = {
  /** Nesting depth of a metadata value (objects and arrays). */
  maxDepth: 16,
  /** Size of a metadata value as JSON, bytes. */
  maxMetadataBytes: 64 * 1024,
  maxTags: 100,
  /** Length of one tag, a project id or an SDK version. */
  maxStringLength: 256,
} as const;

/**
 * Checks `value` (e.g. `user_metadata`) against {@link FREE_FORM_LIMITS} without recursion, so a
 * 100 000-deep value is refused with a 400 here instead of overflowing the stack of every later
 * listing that serialises it.
 */
export function checkMetadata(value: unknown, field: string): void {
  const { maxDepth, maxMetadataBytes } = FREE_FORM_LIMITS;
  let bytes = 0;
  const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: 0 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (typeof v === "string") bytes += v.length + 2;
    else if (v === null || typeof v !== "object") bytes += 8;
    else {
      if (depth >= maxDepth) {
        throw new TinkerValidationError(
          `${field} nests deeper than ${maxDepth} levels; flatten it (metadata is for short labels)`,
          field,
        );
      }
      if (Array.isArray(v)) {
        bytes += 2 + v.length;
        for (const x of v) stack.push({ v: x, depth: depth + 1 });
      } else {
        for (const [k, x] of Object.entries(v)) {
          bytes += k.length + 4;
          stack.push({ v: x, depth: depth + 1 });
        }
      }
    }
    if (bytes > maxMetadataBytes) {
      throw new TinkerValidationError(
        `${field} is larger than ${maxMetadataBytes} bytes as JSON; keep metadata to short labels and store bulk data in files`,
        field,
      );
    }
  }
}

/** Checks a client-chosen short string (a tag, project id, SDK version). */
export function checkShortString(value: string | undefined, field: string): void {
  const max = FREE_FORM_LIMITS.maxStringLength;
  if (value !== undefined && value.length > max) {
    throw new TinkerValidationError(
      `${field} is ${value.length} characters long; at most ${max} are accepted`,
      field,
    );
  }
}

export function checkTags(tags: readonly string[], field = "tags"): void {
  const max = FREE_FORM_LIMITS.maxTags;
  if (tags.length > max) {
    throw new TinkerValidationError(`${field} has ${tags.length} entries; at most ${max}`, field);
  }
  for (const t of tags) checkShortString(t, field);
}

import { HttpError } from "./http-error.js";

/** Longest file name common file systems take (NAME_MAX). */
const NAME_MAX = 255;
/**
 * What atomic writes add around a checkpoint's folder name for their temp and backup siblings:
 * `.<name>.replaced-<pid>-<12 hex>`, with room for a 10-digit pid.
 */
const TEMP_NAME_OVERHEAD = ".".length + ".replaced-".length + 10 + "-".length + 12;
/** Longest checkpoint name: its folder and the temp names used to write it all fit NAME_MAX. */
export const MAX_CHECKPOINT_NAME = NAME_MAX - TEMP_NAME_OVERHEAD;

const CHECKPOINT_NAME = new RegExp(`^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,${MAX_CHECKPOINT_NAME - 1}}$`);

/**
 * Checks a checkpoint name (the last part of `tinker://RUN/weights/NAME`): letters, digits, `_`,
 * `-`, `.`, not starting with a dot, at most {@link MAX_CHECKPOINT_NAME} characters. This rules
 * out path traversal.
 */
export function validateCheckpointName(name: unknown, field = "path"): string {
  if (typeof name !== "string" || !CHECKPOINT_NAME.test(name)) {
    const shown = typeof name === "string" ? JSON.stringify(name.slice(0, 80)) : String(name);
    const length = typeof name === "string" ? ` (${name.length} characters)` : "";
    throw new HttpError(
      400,
      `invalid checkpoint name ${shown}${length} in "${field}": use 1-${MAX_CHECKPOINT_NAME} characters from A-Z a-z 0-9 _ - . (not starting with a dot), e.g. "step-100"`,
    );
  }
  return name;
}

/** Checkpoint kinds as they appear in `tinker://` paths and checkpoint ids. */
export type CheckpointKind = "weights" | "sampler_weights";

export function checkpointType(kind: CheckpointKind): "training" | "sampler" {
  return kind === "weights" ? "training" : "sampler";
}

/**
 * A file-system-safe directory name for an id such as `<uuid>:train:0`: characters outside
 * `[A-Za-z0-9_.-]` become `%XX`, so distinct ids never map to the same name.
 */
export function idToDirName(id: string): string {
  const safe = id.replace(/[^A-Za-z0-9_.-]/g, (c) => {
    const code = c.codePointAt(0)!;
    return code < 256
      ? `%${code.toString(16).toUpperCase().padStart(2, "0")}`
      : `%u${code.toString(16)}`;
  });
  return safe.startsWith(".") ? `%2E${safe.slice(1)}` : safe;
}

export function dirNameToId(name: string): string {
  return name
    .replace(/%u([0-9a-f]+)/g, (_, h: string) => String.fromCodePoint(Number.parseInt(h, 16)))
    .replace(/%([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}

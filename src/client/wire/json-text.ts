/**
 * Serialising request bodies to text. `stringifyCompact` is plain `JSON.stringify` (what the
 * client sends by default: smallest, and any server parses it). `stringifyPythonStyle` reproduces
 * the reference SDK's bytes (`json.dumps` defaults: `", "` / `": "` separators, non-ASCII escaped,
 * floats written Python-style such as `1.0`, `1e-05`, `1e+16`) so a request can be compared with a
 * recording byte for byte. JSON has one number type, so which integral values are floats is decided
 * by the field: the reference's float fields, every value under `metrics` / `loss_fn_config`,
 * `logprobs` lists, and the `data` of a `float32` tensor.
 */

const FLOAT_KEYS = new Set([
  "temperature",
  "top_p",
  "learning_rate",
  "beta1",
  "beta2",
  "eps",
  "weight_decay",
  "grad_clip_norm",
  "logprobs",
  "prompt_logprobs",
]);
const FLOAT_MAP_KEYS = new Set(["metrics", "loss_fn_config"]);

/** `JSON.stringify` without spaces. */
export function stringifyCompact(value: unknown): string {
  return JSON.stringify(value);
}

/** Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 or from 1e16. */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [mant, expText] = Math.abs(x).toExponential().split("e") as [string, string];
  const exp = Number(expText);
  const digits = mant.replace(".", "");
  const decpt = exp + 1;
  if (decpt <= -4 || decpt > 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, "0");
    return `${sign}${m}e${exp < 0 ? "-" : "+"}${e}`;
  }
  if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${"0".repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

function pythonString(s: string): string {
  return JSON.stringify(s).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function write(value: unknown, asFloat: boolean): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number") {
    if (asFloat || !Number.isInteger(value)) return pythonFloatRepr(value);
    return String(value);
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "string") return pythonString(value);
  if (Array.isArray(value)) return `[${value.map((v) => write(v, asFloat)).join(", ")}]`;
  if (typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const floatTensor = obj["dtype"] === "float32";
    const parts: string[] = [];
    for (const [k, v] of Object.entries(obj)) {
      if (v === undefined) continue;
      const f = FLOAT_KEYS.has(k) || (floatTensor && k === "data");
      const inner = FLOAT_MAP_KEYS.has(k)
        ? `{${Object.entries(v as Record<string, unknown>)
            .map(([mk, mv]) => `${pythonString(mk)}: ${write(mv, true)}`)
            .join(", ")}}`
        : write(v, f);
      parts.push(`${pythonString(k)}: ${inner}`);
    }
    return `{${parts.join(", ")}}`;
  }
  throw new TypeError(`cannot serialise a ${typeof value} as JSON`);
}

/** The bytes `json.dumps(body)` would produce in the reference SDK (see the module comment). */
export function stringifyPythonStyle(value: unknown): string {
  return write(value, false);
}

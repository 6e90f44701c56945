import { TinkerValidationError } from "../../client/errors.js";

/**
 * An error that becomes an HTTP response `{"detail": message}` with `status`. Handlers throw it;
 * the dispatcher turns it into the response and the server keeps serving.
 */
export class HttpError extends Error {
  override name = "HttpError";
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

export const badRequest = (message: string): HttpError => new HttpError(400, message);
export const notFound = (message: string): HttpError => new HttpError(404, message);
export const conflict = (message: string): HttpError => new HttpError(409, message);

/**
 * Maps an error thrown while handling a request to the HTTP error to send. Unexpected errors
 * become a 500 that names only `ref` (the server log has the details) and the error code.
 */
export function toHttpError(err: unknown, ref = ""): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof TinkerValidationError) {
    const field = err.field ? ` (field "${err.field}")` : "";
    return new HttpError(400, `${err.message}${field}`);
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const what = typeof code === "string" && /^E[A-Z0-9]+$/.test(code) ? ` (${code})` : "";
  const see = ref ? `; the server log has the details under ${ref}` : "";
  return new HttpError(500, `internal server error${what}${see}`);
}

/**
 * Absolute file system paths (POSIX or Windows), except the server's own `/api/...` URLs and a
 * lone "/" (as in `"/"-separated`), which names no file.
 */
const PATH_LIKE = /(^|[\s'"`(=[])((?:\/(?!api\/)(?=[^\s'"`),:\]])|[A-Za-z]:\\)[^\s'"`),:\]]*)/g;

/** `message` with absolute server paths replaced, so errors never show clients the file system. */
export function scrubPaths(message: string): string {
  return message.replace(PATH_LIKE, (_, lead: string) => `${lead}<server path>`);
}

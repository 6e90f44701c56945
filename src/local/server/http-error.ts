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

/** Maps an error thrown while handling a request to the HTTP error to send. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof TinkerValidationError) {
    const field = err.field ? ` (field "${err.field}")` : "";
    return new HttpError(400, `${err.message}${field}`);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new HttpError(500, `internal server error: ${message}`);
}

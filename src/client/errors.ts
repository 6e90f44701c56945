/**
 * The error hierarchy of tinker-ts. Every error thrown by the library is a `TinkerError`.
 *
 * TinkerError
 * ├── TinkerValidationError        bad input caught on the client (names the field and the fix)
 * ├── APIError                     something went wrong talking to the server
 * │   ├── APIStatusError           the server answered with a 4xx/5xx status
 * │   │   ├── BadRequestError (400), AuthenticationError (401), PermissionDeniedError (403),
 * │   │   │   NotFoundError (404), ConflictError (409), UnprocessableEntityError (422),
 * │   │   │   RateLimitError (429), InternalServerError (>= 500)
 * │   ├── APIConnectionError       no response (DNS, refused, reset)
 * │   │   └── APITimeoutError      the request or the wait for it timed out
 * │   ├── APIResponseValidationError  the response did not have the expected shape
 * │   └── RequestFailedError       a future finished with {"error", "category"}
 * └── APIUserAbortError            the caller's AbortSignal fired
 */
export class TinkerError extends Error {
  override name = "TinkerError";
}

/** Invalid input detected before anything was sent or changed. `field` names the offending input. */
export class TinkerValidationError extends TinkerError {
  override name = "TinkerValidationError";
  readonly field: string | undefined;
  constructor(message: string, field?: string, opts?: { cause?: unknown }) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.field = field;
  }
}

export class APIError extends TinkerError {
  override name = "APIError";
  /** The HTTP method and path of the request that failed, e.g. `POST /api/v1/asample`. */
  readonly request: string | undefined;
  /** The decoded response body, when there was one. */
  readonly body: unknown;
  constructor(message: string, opts: { request?: string; body?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.request = opts.request;
    this.body = opts.body;
  }
}

export class APIStatusError extends APIError {
  override name = "APIStatusError";
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    status: number,
    message: string,
    opts: { request?: string; body?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, opts);
    this.status = status;
    this.headers = opts.headers ?? {};
  }

  /** Build the subclass that matches `status`. Message: `Error code: <status> - <body>`. */
  static fromResponse(
    status: number,
    body: unknown,
    opts: { request?: string; headers?: Record<string, string> } = {},
  ): APIStatusError {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    const where = opts.request ? ` (${opts.request})` : "";
    const message = `Error code: ${status} - ${text ?? ""}${where}`;
    const Ctor = statusErrorClass(status);
    return new Ctor(status, message, { ...opts, body });
  }
}

export class BadRequestError extends APIStatusError {
  override name = "BadRequestError";
}
export class AuthenticationError extends APIStatusError {
  override name = "AuthenticationError";
}
export class PermissionDeniedError extends APIStatusError {
  override name = "PermissionDeniedError";
}
export class NotFoundError extends APIStatusError {
  override name = "NotFoundError";
}
export class ConflictError extends APIStatusError {
  override name = "ConflictError";
}
export class UnprocessableEntityError extends APIStatusError {
  override name = "UnprocessableEntityError";
}
export class RateLimitError extends APIStatusError {
  override name = "RateLimitError";
}
export class InternalServerError extends APIStatusError {
  override name = "InternalServerError";
}

function statusErrorClass(status: number): typeof APIStatusError {
  switch (status) {
    case 400:
      return BadRequestError;
    case 401:
      return AuthenticationError;
    case 403:
      return PermissionDeniedError;
    case 404:
      return NotFoundError;
    case 409:
      return ConflictError;
    case 422:
      return UnprocessableEntityError;
    case 429:
      return RateLimitError;
    default:
      return status >= 500 ? InternalServerError : APIStatusError;
  }
}

export class APIConnectionError extends APIError {
  override name = "APIConnectionError";
}

export class APITimeoutError extends APIConnectionError {
  override name = "APITimeoutError";
}

export class APIResponseValidationError extends APIError {
  override name = "APIResponseValidationError";
}

/** Category the server gives a failed future: `user` errors are the caller's to fix. */
export type RequestFailureCategory = "unknown" | "server" | "user";

export class RequestFailedError extends APIError {
  override name = "RequestFailedError";
  readonly requestId: string;
  readonly category: RequestFailureCategory;
  constructor(message: string, requestId: string, category: RequestFailureCategory) {
    super(message);
    this.requestId = requestId;
    this.category = category;
  }
}

export class APIUserAbortError extends TinkerError {
  override name = "APIUserAbortError";
  constructor(message = "Request was aborted.", opts?: { cause?: unknown }) {
    super(message, opts);
  }
}

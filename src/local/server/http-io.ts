import type { IncomingMessage, ServerResponse } from "node:http";
import { HttpError } from "./http-error.js";

/** Reads the whole request body, failing with 413 once it passes `maxBytes`. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(req.headers["content-length"] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    return Promise.reject(tooLarge(declared, maxBytes));
  }
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let total = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      total += chunk.length;
      if (total > maxBytes) {
        failed = true;
        parts.length = 0;
        reject(tooLarge(total, maxBytes));
        return;
      }
      parts.push(chunk);
    });
    req.on("end", () => {
      if (failed) return;
      const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
      resolve(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
    });
    req.on("error", (err) => {
      if (!failed) reject(new HttpError(400, `could not read the request body: ${err.message}`));
    });
  });
}

function tooLarge(size: number, max: number): HttpError {
  return new HttpError(
    413,
    `request body of ${size} bytes exceeds the server limit of ${max} bytes; send smaller batches (split the data into several forward_backward calls) or start the server with a larger body limit`,
  );
}

/** Parses a JSON body; an empty body is `{}` (some endpoints take no body). */
export function parseJsonBody(bytes: Uint8Array): unknown {
  if (bytes.length === 0) return {};
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  try {
    return JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new HttpError(400, `request body is not valid JSON (${why}); send a JSON object`);
  }
}

/** The media type of a request without parameters, lower-cased ("" when absent). */
export function mediaType(req: IncomingMessage): string {
  const ct = req.headers["content-type"];
  return (ct ?? "").split(";")[0]!.trim().toLowerCase();
}

/** Whether the client listed protobuf in `Accept`. */
export function acceptsProtobuf(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? "";
  return accept.toLowerCase().includes("application/x-protobuf");
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendBytes(
  res: ServerResponse,
  status: number,
  contentType: string,
  bytes: Uint8Array,
): void {
  res.writeHead(status, { "content-type": contentType, "content-length": bytes.byteLength });
  res.end(bytes);
}

/** No body (REST endpoints documented as returning nothing): 204, so no client tries to parse it. */
export function sendEmpty(res: ServerResponse, status = 204): void {
  res.writeHead(status, { "content-length": 0 });
  res.end();
}

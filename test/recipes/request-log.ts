/**
 * A loopback HTTP proxy in front of the local server that records the order in which requests
 * arrive and final results leave (`retrieve_future` answers that are not `try_again`), and can
 * hold each `retrieve_future` answer back a little so "submitted before the result was seen" is
 * decided by the client's behaviour, not by how fast the engine happens to be.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface LoggedEvent {
  kind: "request" | "result";
  path: string;
  /** The request id: of the submitted future (request) or of the finished one (result). */
  requestId: string | undefined;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function requestIdOf(body: Buffer, contentType: string | undefined): string | undefined {
  if (!contentType?.includes("json")) return undefined;
  try {
    const v = JSON.parse(body.toString("utf8")) as { request_id?: unknown };
    return typeof v.request_id === "string" ? v.request_id : undefined;
  } catch {
    return undefined;
  }
}

export interface RequestLog {
  url: string;
  events: LoggedEvent[];
  close(): Promise<void>;
}

export async function startRequestLog(target: string, holdResultsMs = 0): Promise<RequestLog> {
  const events: LoggedEvent[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const path = (req.url ?? "").split("?")[0]!;
      const pollId = path.endsWith("/retrieve_future")
        ? requestIdOf(body, req.headers["content-type"])
        : undefined;
      if (!path.endsWith("/retrieve_future"))
        events.push({ kind: "request", path, requestId: undefined });
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === "string" && k !== "host" && k !== "content-length") headers[k] = v;
      }
      const upstream = await fetch(`${target}${req.url ?? ""}`, {
        method: req.method ?? "GET",
        headers,
        ...(body.length > 0 ? { body } : {}),
      });
      const bytes = Buffer.from(await upstream.arrayBuffer());
      const type = upstream.headers.get("content-type") ?? undefined;
      const submitted = requestIdOf(bytes, type);
      if (!path.endsWith("/retrieve_future") && submitted !== undefined) {
        events.findLast((e) => e.kind === "request" && e.path === path)!.requestId = submitted;
      }
      if (pollId !== undefined) {
        if (holdResultsMs > 0) await new Promise((r) => setTimeout(r, holdResultsMs));
        const tryAgain = type?.includes("json") && bytes.toString("utf8").includes('"try_again"');
        if (upstream.status === 200 && !tryAgain) {
          events.push({ kind: "result", path, requestId: pollId });
        }
      }
      const out: Record<string, string> = {};
      upstream.headers.forEach((v, k) => {
        if (k !== "content-length" && k !== "content-encoding" && k !== "transfer-encoding")
          out[k] = v;
      });
      res.writeHead(upstream.status, out);
      res.end(bytes);
    })().catch((err: unknown) => {
      res.writeHead(502);
      res.end(String(err));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    events,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

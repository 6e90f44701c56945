/**
 * A misbehaving HTTP server on loopback for fault-injection tests: routes answer with scripted
 * replies (status, JSON, raw bytes, headers), can drop the connection, hang, or send malformed
 * bodies; every request is recorded. Reusable by any test that needs a scripted Tinker endpoint.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  body: Buffer;
  /** Arrival time (ms since epoch). */
  at: number;
}

export type Reply =
  | {
      status?: number;
      json?: unknown;
      body?: Buffer | string;
      headers?: Record<string, string>;
      /** Delay before answering (ms). */
      delayMs?: number;
    }
  | { drop: true }
  | { hang: true };

export type Handler = (req: RecordedRequest) => Reply | Promise<Reply>;

export function bodyJson(req: RecordedRequest): Record<string, unknown> {
  return JSON.parse(req.body.toString("utf8")) as Record<string, unknown>;
}

export class FaultServer {
  readonly requests: RecordedRequest[] = [];
  private readonly handlers = new Map<string, Handler>();
  private readonly scripts = new Map<string, Reply[]>();
  private readonly sockets = new Set<Socket>();
  private fallback: Handler = () => ({ status: 404, json: { detail: "no route" } });

  private constructor(private readonly server: Server) {}

  static async start(): Promise<FaultServer> {
    let self: FaultServer | undefined;
    const server = createServer((req, res) => void self!.handle(req, res));
    self = new FaultServer(server);
    server.on("connection", (s) => {
      self!.sockets.add(s);
      s.on("close", () => self!.sockets.delete(s));
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return self;
  }

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** Default handler for `"METHOD /path"`; a path ending in `*` matches a prefix. */
  on(route: string, handler: Handler): this {
    this.handlers.set(route, handler);
    return this;
  }

  /** Replies served, in order, before the route's handler (one per request). */
  script(route: string, ...replies: Reply[]): this {
    const list = this.scripts.get(route) ?? [];
    list.push(...replies);
    this.scripts.set(route, list);
    return this;
  }

  otherwise(handler: Handler): this {
    this.fallback = handler;
    return this;
  }

  /** Requests to `"METHOD /path"`. */
  requestsTo(route: string): RecordedRequest[] {
    return this.requests.filter((r) => `${r.method} ${r.path}` === route);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? "/", "http://x");
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
    }
    const rec: RecordedRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.searchParams,
      headers,
      body: Buffer.concat(chunks),
      at: Date.now(),
    };
    this.requests.push(rec);
    const route = `${rec.method} ${rec.path}`;
    let reply: Reply;
    try {
      const scripted = this.scripts.get(route);
      if (scripted && scripted.length > 0) reply = scripted.shift()!;
      else reply = await (this.findHandler(route) ?? this.fallback)(rec);
    } catch (err) {
      reply = { status: 500, json: { detail: String(err) } };
    }
    if ("drop" in reply) {
      req.socket.destroy();
      return;
    }
    if ("hang" in reply) return;
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    const status = reply.status ?? 200;
    let body: Buffer;
    const outHeaders: Record<string, string> = { ...(reply.headers ?? {}) };
    if (reply.json !== undefined) {
      body = Buffer.from(JSON.stringify(reply.json));
      outHeaders["content-type"] ??= "application/json";
    } else if (reply.body !== undefined) {
      body = typeof reply.body === "string" ? Buffer.from(reply.body) : reply.body;
    } else body = Buffer.alloc(0);
    outHeaders["content-length"] = String(body.length);
    if (res.destroyed) return;
    res.writeHead(status, outHeaders);
    res.end(body);
  }

  private findHandler(route: string): Handler | undefined {
    const exact = this.handlers.get(route);
    if (exact) return exact;
    for (const [k, h] of this.handlers) {
      if (k.endsWith("*") && route.startsWith(k.slice(0, -1))) return h;
    }
    return undefined;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

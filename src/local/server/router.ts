import type { IncomingMessage, ServerResponse } from "node:http";
import { HttpError } from "./http-error.js";

/** Everything a route handler gets. */
export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Path parameters by name (`:name` segments of the pattern). */
  params: Readonly<Record<string, string>>;
  /** Aborts when the client goes away (long polls stop waiting). */
  signal: AbortSignal;
}

export type RouteHandler = (ctx: RouteContext) => Promise<void>;

export interface Route {
  method: string;
  /** Segments after the prefix, e.g. `training_runs/:run/checkpoints`. */
  pattern: string;
  handler: RouteHandler;
  /** Reachable without an API key (health checks, signed archive links). */
  public?: boolean;
}

interface CompiledRoute extends Route {
  segments: string[];
}

/**
 * A route table over path segments. Segments are percent-decoded and then split on `/`, so a
 * checkpoint id sent either raw (`weights/step-1`) or escaped (`weights%2Fstep-1`) matches
 * `:kind/:name`.
 */
export class Router {
  private readonly routes: CompiledRoute[] = [];

  constructor(private readonly prefix: string) {}

  add(route: Route): this {
    this.routes.push({ ...route, segments: route.pattern.split("/") });
    return this;
  }

  /** The matching route and its parameters; 404 for an unknown path, 405 for a wrong method. */
  match(method: string, pathname: string): { route: Route; params: Record<string, string> } {
    const segments = splitPath(pathname, this.prefix);
    if (segments === undefined) throw unknownPath(method, pathname);
    let methodMismatch = false;
    for (const r of this.routes) {
      const params = matchSegments(r.segments, segments);
      if (!params) continue;
      if (r.method !== method) {
        methodMismatch = true;
        continue;
      }
      return { route: r, params };
    }
    if (methodMismatch) {
      const allowed = this.routes
        .filter((r) => matchSegments(r.segments, segments))
        .map((r) => r.method)
        .join(", ");
      throw new HttpError(405, `${method} is not supported on ${pathname}; use ${allowed}`, {
        allow: allowed,
      });
    }
    throw unknownPath(method, pathname);
  }
}

function unknownPath(method: string, pathname: string): HttpError {
  return new HttpError(
    404,
    `no endpoint ${method} ${pathname} on this server; the local Tinker server implements the /api/v1 endpoints of the Tinker SDK`,
  );
}

function splitPath(pathname: string, prefix: string): string[] | undefined {
  if (!pathname.startsWith(prefix)) return undefined;
  const rest = pathname.slice(prefix.length).replace(/^\/+|\/+$/g, "");
  const out: string[] = [];
  for (const raw of rest.split("/")) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      throw new HttpError(400, `malformed percent-encoding in path segment ${JSON.stringify(raw)}`);
    }
    for (const part of decoded.split("/")) out.push(part);
  }
  return out;
}

function matchSegments(pattern: string[], segments: string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const s = segments[i]!;
    if (p.startsWith(":")) {
      if (s === "") return undefined;
      params[p.slice(1)] = s;
    } else if (p !== s) {
      return undefined;
    }
  }
  return params;
}

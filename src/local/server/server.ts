import { randomUUID, timingSafeEqual } from "node:crypto";
import { mkdir, readdir, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { isIP } from "node:net";
import { join } from "node:path";
import type { Logger } from "../../client/core/logger.js";
import { TinkerValidationError } from "../../client/errors.js";
import { tinkerCacheDir } from "../../fs/atomic.js";
import type { LocalEngine } from "../engine/api.js";
import { addApiRoutes } from "./api-routes.js";
import { FutureStore } from "./futures.js";
import { HttpError, scrubPaths, toHttpError } from "./http-error.js";
import { sendJson } from "./http-io.js";
import { ownerMayBeAlive } from "./process-alive.js";
import { addRestRoutes } from "./rest-routes.js";
import { Router } from "./router.js";
import { TinkerService } from "./service.js";
import { ServerStore } from "./store.js";

/** Options of {@link startLocalServer}. */
export interface LocalServerOptions {
  /** Interface to bind. Default `127.0.0.1`; any other address requires `apiKey`. */
  host?: string;
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /**
   * Where checkpoints, run metadata and generated preset tokenizers live, private to the user.
   * Default `tinkerCacheDir()/server`.
   */
  dataDir?: string;
  /** When set, every request must carry it in `X-API-Key` (except `healthz` and archive links). */
  apiKey?: string;
  /** The engine to serve. Default: a new local engine over `modelDirs` and `presets`. */
  engine?: LocalEngine;
  /** Folders of Hugging Face style models (config.json + safetensors + tokenizer) to serve. */
  modelDirs?: string[];
  /**
   * Built-in model presets to serve, e.g. `tiny-bytes`, `tiny-qwen3`. Default: all of them; `[]`
   * serves none (only `modelDirs`). Ignored when `engine` is given.
   */
  presets?: string[];
  /** Receives request errors and lifecycle messages. Default: errors to `console.error`. */
  logger?: Pick<Logger, "info" | "warn" | "error">;
  /** Tuning knobs; the defaults suit a loopback server. */
  limits?: LocalServerLimits;
  /** Do not keep the process alive just because the server listens (embedded use). */
  unref?: boolean;
}

export interface LocalServerLimits {
  /** Largest request body, bytes (default 256 MiB). */
  maxBodyBytes?: number;
  /** Largest decompressed zstd body, bytes (default: `maxBodyBytes`). */
  maxDecompressedBytes?: number;
  /** How long `retrieve_future` holds a poll before `try_again`, ms (default 5000). */
  pollHoldMs?: number;
  /** How long later requests wait for a missing `seq_id`, ms (default 60 000). */
  seqGapTimeoutMs?: number;
  /** Samples handed to the engine at once (default 16: keeps its queue fed; training waits behind at most that many). */
  samplingConcurrency?: number;
  /** Queued samples before `asample` answers 429 (default 10 000). */
  maxQueuedSamples?: number;
  /** Results above this size are announced with `complete_metadata`, bytes (default 8 MiB). */
  inlineResultBytes?: number;
  /** How long results stay retrievable after their first retrieval, ms (default 120 000). */
  futureGraceMs?: number;
  /**
   * Engine memory that models and requests may use, bytes (default 80% of the engine's 4 GiB
   * heap). create_model, forward_backward and sample requests that would not fit are refused
   * with a 400 when they are sent.
   */
  engineMemoryBytes?: number;
}

/** A running local server. */
export interface LocalServer {
  /** Base URL, e.g. `http://127.0.0.1:43817` (pass it to the client as `baseUrl`). */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  /** Stops accepting requests, fails waiting work, and closes the engine if the server made it. */
  close(): Promise<void>;
}

const PREFIX = "/api/v1";

/**
 * Starts a Tinker-compatible HTTP server over the local engine.
 *
 * @example
 * const server = await startLocalServer({ presets: ["tiny-bytes"] });
 * // ... new ServiceClient({ baseUrl: server.url }) ...
 * await server.close();
 */
export async function startLocalServer(opts: LocalServerOptions = {}): Promise<LocalServer> {
  const host = opts.host ?? "127.0.0.1";
  const loopback = isLoopback(host);
  if (!loopback && !opts.apiKey) {
    throw new TinkerValidationError(
      `binding the local server to ${host} exposes it to the network; pass an apiKey (--api-key) or bind 127.0.0.1`,
      "apiKey",
    );
  }
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TinkerValidationError(`port must be an integer in 0..65535, got ${port}`, "port");
  }
  const logger = opts.logger ?? { info: () => undefined, warn: console.warn, error: console.error };
  const limits = opts.limits ?? {};
  const dataDir = opts.dataDir ?? join(tinkerCacheDir(), "server");
  // Per process: several servers (e.g. embedded ones in two scripts) may share one data dir.
  const scratchDir = join(dataDir, "tmp", `${process.pid}-${randomUUID().slice(0, 8)}`);
  const store = new ServerStore(dataDir);
  await store.load(); // creates the data dir private to the user
  await removeStaleScratch(join(dataDir, "tmp"));
  await mkdir(scratchDir, { recursive: true, mode: 0o700 });
  await store.sweepExpired();

  const ownEngine = opts.engine === undefined;
  // Loaded on demand: a server handed an engine never pulls in the model code.
  let engine: LocalEngine;
  if (opts.engine) engine = opts.engine;
  else {
    try {
      await (await import("./model-dirs.js")).checkModelDirs(opts.modelDirs ?? []);
      engine = await (await import("./engine-factory.js")).createDefaultEngine({
        modelDirs: opts.modelDirs ?? [],
        presets: opts.presets,
        cacheDir: dataDir,
      });
    } catch (err) {
      await rm(scratchDir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }
  const futures = new FutureStore({ retrievedGraceMs: limits.futureGraceMs ?? 120_000 });
  const service = new TinkerService({
    engine,
    store,
    futures,
    scratchDir,
    seqGapTimeoutMs: limits.seqGapTimeoutMs ?? 60_000,
    samplingConcurrency: limits.samplingConcurrency ?? 16,
    maxQueuedSamples: limits.maxQueuedSamples ?? 10_000,
    engineMemoryBytes: limits.engineMemoryBytes,
  });

  let baseUrl = "";
  const maxBodyBytes = limits.maxBodyBytes ?? 256 * 1024 * 1024;
  const router = new Router(PREFIX);
  addApiRoutes(router, service, {
    maxBodyBytes,
    // A compressed body may not unpack to more than an uncompressed one may be.
    maxDecompressedBytes: limits.maxDecompressedBytes ?? maxBodyBytes,
    pollHoldMs: limits.pollHoldMs ?? 5000,
    inlineResultBytes: limits.inlineResultBytes ?? 8 * 1024 * 1024,
    clientConfig: {
      pjwt_auth_enabled: false,
      credential_default_source: "api_key",
      use_pyqwest_transport: false,
      proto_compress_fwdbwd: false,
      parallel_fwdbwd_chunks: true,
      // Clients split forward_backward calls into requests of about this many estimated bytes
      // (~20-25k tokens), which the engine admits one after another; gradients accumulate.
      fwdbwd_max_chunk_bytes_count: 400_000,
      create_model_via_load_weights: true,
      sample_no_retries: false,
    },
  });
  addRestRoutes(router, service, {
    maxBodyBytes,
    archiveLinkTtlMs: 15 * 60_000,
    baseUrl: () => baseUrl,
    prefix: PREFIX,
  });

  const expectedKey = opts.apiKey === undefined ? undefined : Buffer.from(opts.apiKey, "utf8");
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });
  server.keepAliveTimeout = 65_000;
  server.on("connection", (s: Socket) => {
    if (opts.unref) s.unref(); // the in-process client's own sockets keep the loop alive while busy
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("clientError", (_err, socket: Socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    const method = req.method ?? "GET";
    try {
      const url = new URL(req.url ?? "/", "http://local");
      checkBrowserAndHost(req, loopback && expectedKey === undefined, host);
      const { route, params } = router.match(method, url.pathname);
      if (!route.public && expectedKey) checkApiKey(req, expectedKey);
      await route.handler({ req, res, url, params, signal: abort.signal });
    } catch (err) {
      const ref = `err-${randomUUID().slice(0, 8)}`;
      const httpErr = toHttpError(err, ref);
      if (httpErr.status >= 500) logger.error(`${method} ${req.url} [${ref}]: ${errorStack(err)}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const close = httpErr.status === 413;
      sendJson(
        res,
        httpErr.status,
        { detail: scrubPaths(httpErr.message) },
        {
          ...httpErr.headers,
          ...(close ? { connection: "close" } : {}),
        },
      );
      // Drain whatever the client still sends so it can read the answer, then move on.
      if (!req.complete) req.resume();
    }
  }

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    // Nothing listens, so nothing else would ever release what was set up above.
    await service.shutdown();
    if (ownEngine) await engine.close().catch(() => undefined);
    await rm(scratchDir, { recursive: true, force: true }).catch(() => undefined);
    throw listenError(err, host, port);
  }
  if (opts.unref) server.unref();
  const addr = server.address() as AddressInfo;
  const urlHost =
    isIP(host) === 6 ? `[${host}]` : host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  baseUrl = `http://${urlHost}:${addr.port}`;
  logger.info(`tinker-ts local server listening on ${baseUrl} (data: ${dataDir})`);

  const sweeper = setInterval(() => {
    futures.sweep();
    service.sweep();
    store
      .sweepExpired()
      .catch((err: unknown) => logger.warn(`checkpoint TTL sweep failed: ${errorStack(err)}`));
  }, 30_000);
  sweeper.unref();

  let closing: Promise<void> | undefined;
  return {
    url: baseUrl,
    port: addr.port,
    host,
    dataDir,
    close: () => {
      closing ??= (async () => {
        clearInterval(sweeper);
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await service.shutdown();
        // Long polls and in-flight requests get a moment to finish, then their sockets go.
        setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 200).unref();
        await stopped;
        if (ownEngine) await engine.close();
        await rm(scratchDir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}

/**
 * Whether `host` names this machine only: a literal address in 127.0.0.0/8, `::1`, or `localhost`.
 * Names that merely start with "127." (`127.attacker.example`) are DNS names, not loopback.
 */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || h === "0:0:0:0:0:0:0:1" || h.startsWith("::ffff:127.");
  return false;
}

/**
 * Without an API key, a loopback server must not be reachable from web pages: browsers send
 * `Origin` on cross-site requests, and DNS rebinding shows up as a `Host` that is a DNS name.
 * Only a literal loopback address, `localhost`, or the address the server is bound to is accepted.
 */
function checkBrowserAndHost(req: IncomingMessage, open: boolean, bindHost: string): void {
  if (!open) return;
  if (req.headers.origin !== undefined) {
    throw new HttpError(
      403,
      "requests from web pages are refused by the local server; call it from Node or Python, or start it with an API key",
    );
  }
  const hostHeader = req.headers.host ?? "";
  if (hostHeader === "") return; // HTTP/1.0 without Host: not a browser, which always sends one
  const name = hostName(hostHeader);
  if (name === undefined || (!isLoopback(name) && name !== bindHost.toLowerCase())) {
    throw new HttpError(
      403,
      `unexpected Host header ${JSON.stringify(hostHeader.slice(0, 100))}; use 127.0.0.1 or localhost`,
    );
  }
}

/** The host part of a Host header (`name`, `name:port`, `[v6]`, `[v6]:port`), lower-cased. */
function hostName(header: string): string | undefined {
  let name: string;
  let rest: string;
  if (header.startsWith("[")) {
    const end = header.indexOf("]");
    if (end < 0) return undefined;
    name = header.slice(1, end);
    rest = header.slice(end + 1);
  } else {
    const colon = header.indexOf(":");
    name = colon < 0 ? header : header.slice(0, colon);
    rest = colon < 0 ? "" : header.slice(colon);
  }
  if (rest !== "" && !/^:\d{1,5}$/.test(rest)) return undefined;
  return name === "" ? undefined : name.toLowerCase();
}

function checkApiKey(req: IncomingMessage, expected: Buffer): void {
  const header = req.headers["x-api-key"];
  const auth = req.headers.authorization;
  const given =
    typeof header === "string" ? header : auth?.startsWith("Bearer ") ? auth.slice(7) : undefined;
  const ok =
    given !== undefined &&
    Buffer.byteLength(given) === expected.length &&
    timingSafeEqual(Buffer.from(given, "utf8"), expected);
  if (!ok) {
    throw new HttpError(
      401,
      given === undefined
        ? "this server requires an API key: send it in the X-API-Key header (set TINKER_API_KEY)"
        : "wrong API key in X-API-Key; use the key the server was started with (--api-key)",
    );
  }
}

/** Removes scratch dirs left by server processes that no longer run. */
async function removeStaleScratch(tmpRoot: string): Promise<void> {
  for (const name of await readdir(tmpRoot).catch(() => [] as string[])) {
    if (ownerMayBeAlive(Number(name.split("-")[0]))) continue;
    await rm(join(tmpRoot, name), { recursive: true, force: true });
  }
}

/** The bind failure, with what to do for the common causes (the original error stays as `cause`). */
function listenError(err: unknown, host: string, port: number): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const why = err instanceof Error ? err.message : String(err);
  if (code === "EADDRINUSE") {
    return new Error(
      `cannot listen on ${host}:${port}: the port is already in use (${why}); stop the other server or pick another port (port 0 picks a free one)`,
      { cause: err },
    );
  }
  if (code === "EACCES") {
    return new Error(
      `cannot listen on ${host}:${port}: permission denied (${why}); ports below 1024 need privileges, use a port of 1024 or more`,
      { cause: err },
    );
  }
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") {
    return new Error(
      `cannot listen on ${host}:${port}: this machine has no such address (${why}); bind 127.0.0.1 or one of its own interfaces`,
      { cause: err },
    );
  }
  return err instanceof Error ? err : new Error(why);
}

function errorStack(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

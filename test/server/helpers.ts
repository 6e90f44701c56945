import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LocalEngine } from "../../src/local/engine/api.js";
import {
  type LocalServer,
  type LocalServerOptions,
  startLocalServer,
} from "../../src/local/server/server.js";

export interface Reply {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
  /** Parsed JSON body (undefined when the body is not JSON). */
  json: Record<string, unknown>;
}

/** A raw HTTP helper bound to one server: no client library in between. */
export class Raw {
  constructor(
    public base: string,
    private readonly defaultHeaders: Record<string, string> = {},
  ) {}

  async call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Reply> {
    const init: RequestInit = { method, headers: { ...this.defaultHeaders, ...headers } };
    if (body instanceof Uint8Array) {
      init.body = body;
    } else if (typeof body === "string") {
      init.body = body;
      (init.headers as Record<string, string>)["content-type"] ??= "application/json";
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)["content-type"] = "application/json";
    }
    const res = await fetch(`${this.base}${path}`, init);
    const bytes = new Uint8Array(await res.arrayBuffer());
    let json: Record<string, unknown> = {};
    if ((res.headers.get("content-type") ?? "").includes("json") && bytes.length > 0) {
      json = JSON.parse(Buffer.from(bytes).toString("utf8")) as Record<string, unknown>;
    }
    return { status: res.status, headers: res.headers, bytes, json };
  }

  post(path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply> {
    return this.call("POST", path, body ?? {}, headers);
  }

  get(path: string, headers?: Record<string, string>): Promise<Reply> {
    return this.call("GET", path, undefined, headers);
  }

  /** Polls `retrieve_future` until the result is not `try_again`. */
  async result(
    requestId: string,
    accept = "application/json",
    allowMetadataOnly = false,
  ): Promise<Reply> {
    for (let i = 0; i < 1000; i++) {
      const r = await this.post(
        "/api/v1/retrieve_future",
        { request_id: requestId, allow_metadata_only: allowMetadataOnly },
        { accept },
      );
      if (r.status === 200 && r.json.type === "try_again") continue;
      return r;
    }
    throw new Error(`future ${requestId} never finished`);
  }

  /** POSTs a future-returning request and waits for its JSON result (asserting success). */
  async run(path: string, body: unknown, accept?: string): Promise<Reply> {
    const sub = await this.post(path, body);
    if (sub.status !== 200) throw new Error(`${path} -> ${sub.status} ${JSON.stringify(sub.json)}`);
    return this.result(String(sub.json.request_id), accept);
  }

  /** `create_model`, waited for; resolves to the new model's id. */
  async createModel(
    sessionId: string,
    modelSeqId: number,
    baseModel: string,
    loraConfig: { rank: number; seed?: number },
  ): Promise<string> {
    const r = await this.run("/api/v1/create_model", {
      session_id: sessionId,
      model_seq_id: modelSeqId,
      base_model: baseModel,
      lora_config: loraConfig,
      type: "create_model",
    });
    return String(r.json.model_id);
  }

  async healthy(): Promise<boolean> {
    const r = await this.get("/api/v1/healthz");
    return r.status === 200 && r.json.status === "ok";
  }
}

export async function tempDir(tag: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `tinker-ts-${tag}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Starts a server on a random loopback port with quiet logging. */
export function startTestServer(
  dataDir: string,
  engine?: LocalEngine,
  extra: Partial<LocalServerOptions> = {},
): Promise<LocalServer> {
  return startLocalServer({
    dataDir,
    ...(engine ? { engine } : { presets: ["tiny-bytes"] }),
    logger: {
      info: () => undefined,
      warn: () => undefined,
      error: (m: string) => console.error(m),
    },
    ...extra,
    limits: { pollHoldMs: 200, ...extra.limits },
  });
}

/** Parses a ustar archive into name -> bytes (regular files only). */
export function untar(bytes: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  let at = 0;
  const text = (a: number, b: number) =>
    Buffer.from(bytes.subarray(a, b)).toString("latin1").replace(/\0.*$/s, "");
  while (at + 512 <= bytes.length) {
    const header = bytes.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
    const declared = Number.parseInt(text(at + 148, at + 156).trim(), 8);
    if (sum !== declared) throw new Error(`bad tar checksum at ${at}`);
    const prefix = text(at + 345, at + 500);
    const name = (prefix ? `${prefix}/` : "") + text(at, at + 100);
    const size = Number.parseInt(text(at + 124, at + 136).trim(), 8);
    out.set(name, bytes.slice(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_BASE_URL, resolveConfig } from "../../src/client/core/config.js";
import { JwtManager, jwtExpiry } from "../../src/client/core/jwt.js";
import { RedactingLogger, redactText } from "../../src/client/core/logger.js";
import { AuthenticationError, TinkerError } from "../../src/client/errors.js";
import { ServiceClient } from "../../src/client/service-client.js";
import { bodyJson } from "./helpers/fault-server.js";
import { MockTinker } from "./helpers/mock-tinker.js";

function makeJwt(expSec: number, sub = "user:1"): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${enc({ alg: "none" })}.${enc({ exp: expSec, sub, email: "a@b.c" })}.c2ln`;
}

function capture() {
  const lines: string[] = [];
  const push =
    (lvl: string) =>
    (m: string, ...args: unknown[]) =>
      lines.push(`${lvl} ${m} ${args.map((a) => JSON.stringify(a)).join(" ")}`);
  return {
    lines,
    debug: push("debug"),
    info: push("info"),
    warn: push("warn"),
    error: push("error"),
  };
}

describe("configuration", () => {
  it("options win over the environment, which wins over defaults", () => {
    const env = {
      TINKER_API_KEY: "tml-env",
      TINKER_BASE_URL: "http://env:1/",
      TINKER_TAGS: "a, b,a,,c",
      TINKER_PROJECT_ID: "p1",
      TINKER_LOG: "debug",
      CLOUDFLARE_ACCESS_CLIENT_ID: "cf-id",
      CLOUDFLARE_ACCESS_CLIENT_SECRET: "cf-secret",
    };
    const c = resolveConfig({ env });
    expect(c.apiKey).toBe("tml-env");
    expect(c.baseUrl).toBe("http://env:1");
    expect(c.tags).toEqual(["a", "b", "c"]);
    expect(c.projectId).toBe("p1");
    expect(c.logLevel).toBe("debug");
    expect(c.telemetry).toBe(false);
    expect(c.defaultHeaders).toEqual({
      "CF-Access-Client-Id": "cf-id",
      "CF-Access-Client-Secret": "cf-secret",
    });
    const o = resolveConfig({ env, apiKey: "tml-opt", baseUrl: "http://opt:2", tags: ["x"] });
    expect([o.apiKey, o.baseUrl, o.tags]).toEqual(["tml-opt", "http://opt:2", ["x"]]);
    expect(resolveConfig({ env: { TINKER_TELEMETRY: "yes" } }).telemetry).toBe(true);
    expect(resolveConfig({ env: { TINKER_BASE_URL: "" } }).baseUrl).toMatch(/tinker-prod$/);
  });

  it("rejects keys without the tml- prefix and bad URLs", () => {
    expect(() => resolveConfig({ env: {}, apiKey: "sk-123" })).toThrow(
      /must start with the 'tml-' prefix/,
    );
    expect(resolveConfig({ env: {}, apiKey: "eyJabc" }).apiKey).toBe("eyJabc");
    expect(() => resolveConfig({ env: {}, baseUrl: "not a url" })).toThrow(/baseUrl/);
  });

  it("a missing key against the production URL fails with a clear message", async () => {
    const s = new ServiceClient({ env: {}, logLevel: "off", baseUrl: DEFAULT_BASE_URL });
    await expect(s.getServerCapabilities()).rejects.toThrow(
      /No Tinker API key. Set TINKER_API_KEY/,
    );
    await s.close();
  });

  it("without a credential or base URL it talks to the embedded local server", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "tinker-client-embedded-"));
    try {
      expect(resolveConfig({ env: {} }).useLocalServer).toBe(true);
      expect(resolveConfig({ env: { TINKER_API_KEY: "tml-x" } }).useLocalServer).toBe(false);
      expect(resolveConfig({ env: {}, baseUrl: "http://h:1" }).useLocalServer).toBe(false);
      const forced = resolveConfig({ env: { TINKER_API_KEY: "tml-cloud-key" }, local: true });
      expect(forced.useLocalServer).toBe(true);
      expect(forced.apiKey).toBeUndefined();
      expect(() => resolveConfig({ env: {}, local: true, baseUrl: "http://h:1" })).toThrow(
        /local: true .* baseUrl must not be set/,
      );
      // `local: true` selects the embedded server even with a cloud key in the environment.
      const s = new ServiceClient({
        env: { TINKER_API_KEY: "tml-cloud-key" },
        local: true,
        logLevel: "off",
        localServer: { dataDir, quiet: true },
      });
      const caps = await s.getServerCapabilities();
      expect(caps.supportedModels.length).toBeGreaterThan(0);
      await s.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("redaction", () => {
  it("removes keys and JWTs from messages and arguments", () => {
    const jwt = makeJwt(1);
    expect(redactText(`key tml-abc123 and ${jwt}`)).toBe("key tml-[redacted] and eyJ[redacted]");
    const sink = capture();
    const log = new RedactingLogger(sink, "debug", () => ["s3cr3t-value"]);
    log.warn(
      "oops tml-abcdef",
      { headers: { "X-API-Key": "anything" }, note: "s3cr3t-value" },
      new Error(`bad ${jwt}`),
    );
    const line = sink.lines.join("\n");
    expect(line).not.toContain("tml-abcdef");
    expect(line).not.toContain("anything");
    expect(line).not.toContain("s3cr3t-value");
    expect(line).not.toContain(jwt);
  });

  it("respects the level", () => {
    const sink = capture();
    const log = new RedactingLogger(sink, "warn");
    log.info("hidden");
    log.debug("hidden");
    log.warn("shown");
    expect(sink.lines).toHaveLength(1);
  });
});

describe("session bootstrap", () => {
  let mock: MockTinker;
  beforeEach(async () => {
    mock = await MockTinker.start();
  });
  afterEach(async () => {
    await mock.close();
  });

  it("exchanges the key for a JWT and uses it on every later call", async () => {
    const jwt = makeJwt(Math.floor(Date.now() / 1000) + 3600);
    mock.flags = { pjwt_auth_enabled: true };
    mock.server.on("POST /api/v1/auth/token", () => ({ json: { jwt } }));
    const sink = capture();
    const s = new ServiceClient({
      apiKey: "tml-durable-key",
      baseUrl: mock.url,
      logger: sink,
      logLevel: "debug",
    });
    await s.createLoraTrainingClient("Qwen/Qwen3-8B");
    const seen = mock.server.requests.map((r) => [r.path, r.headers["x-api-key"]]);
    expect(seen[0]).toEqual(["/api/v1/client/config", "tml-durable-key"]);
    expect(seen[1]).toEqual(["/api/v1/auth/token", "tml-durable-key"]);
    expect(bodyJson(mock.server.requests[1]!)).toEqual({});
    for (const [, key] of seen.slice(2)) expect(key).toBe(jwt);
    await s.close();
    const logs = sink.lines.join("\n");
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain("tml-durable-key");
    expect(logs).not.toContain(jwt);
  });

  it("refreshes the JWT on demand when it is about to expire", async () => {
    let n = 0;
    mock.flags = { pjwt_auth_enabled: true };
    mock.server.on("POST /api/v1/auth/token", () => {
      n++;
      // First token expires in 30 s (inside the 60 s on-demand window), the second in an hour.
      const exp = Math.floor(Date.now() / 1000) + (n === 1 ? 30 : 3600);
      return { json: { jwt: makeJwt(exp, `u${n}`) } };
    });
    const s = new ServiceClient({ apiKey: "tml-k", baseUrl: mock.url, logLevel: "off" });
    await s.getServerCapabilities();
    expect(n).toBe(2);
    const caps = mock.server.requestsTo("GET /api/v1/get_server_capabilities")[0]!;
    expect(jwtExpiry(caps.headers["x-api-key"]!)! - Date.now() / 1000).toBeGreaterThan(3000);
    await s.close();
  });

  it("JwtManager refreshes in the background before expiry, on an unref'd timer", async () => {
    let calls = 0;
    const mgr = new JwtManager({
      exchange: async () => {
        calls++;
        return makeJwt(Math.floor(Date.now() / 1000) + 2);
      },
      logger: new RedactingLogger(capture(), "off"),
      refreshBeforeMs: 1800,
      onDemandMs: 0,
      retryMs: 50,
    });
    await mgr.get();
    await new Promise((r) => setTimeout(r, 700));
    expect(calls).toBeGreaterThanOrEqual(2);
    mgr.stop();
  });

  it("a failed background refresh is retried; 401 is not retried by the HTTP layer", async () => {
    let calls = 0;
    const mgr = new JwtManager({
      exchange: async () => {
        calls++;
        if (calls === 2) throw new Error("down");
        return makeJwt(Math.floor(Date.now() / 1000) + 1);
      },
      logger: new RedactingLogger(capture(), "off"),
      refreshBeforeMs: 990,
      onDemandMs: 0,
      retryMs: 30,
    });
    await mgr.get();
    await new Promise((r) => setTimeout(r, 300));
    expect(calls).toBeGreaterThanOrEqual(3);
    mgr.stop();

    mock.server.on("POST /api/v1/client/config", () => ({
      status: 401,
      json: { detail: "Invalid JWT" },
    }));
    const s = new ServiceClient({ apiKey: "tml-k", baseUrl: mock.url, logLevel: "off" });
    await expect(s.getServerCapabilities()).rejects.toBeInstanceOf(AuthenticationError);
    expect(mock.server.requestsTo("POST /api/v1/client/config")).toHaveLength(1);
    await s.close();
  });

  it("runs the credential command when no key is given", async () => {
    const s = new ServiceClient({
      env: { TINKER_CREDENTIAL_CMD: "echo tml-from-cmd" },
      baseUrl: mock.url,
      logLevel: "off",
    });
    await s.getServerCapabilities();
    expect(mock.server.requests[0]!.headers["x-api-key"]).toBe("tml-from-cmd");
    await s.close();
    const bad = new ServiceClient({
      credentialCmd: "exit 3",
      baseUrl: mock.url,
      logLevel: "off",
      env: {},
    });
    const err = await bad.getServerCapabilities().catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /credential command .* failed: .*prints your Tinker API key/,
    );
    expect((err as Error).cause).toBeInstanceOf(Error);
    await bad.close();
  });

  it("dynamic_config 404 means defaults; its failure does not block", async () => {
    mock.server.on("POST /api/v1/client/dynamic_config", () => ({ status: 404, json: {} }));
    const s = new ServiceClient({ apiKey: "tml-k", baseUrl: mock.url, logLevel: "off" });
    await s.createLoraTrainingClient("Qwen/Qwen3-8B");
    expect(mock.server.requestsTo("POST /api/v1/client/dynamic_config")).toHaveLength(1);
    await s.close();
  });

  it("sends tags, project id and user metadata with create_session; logs server messages", async () => {
    mock.server.on("POST /api/v1/create_session", () => ({
      json: { session_id: "s9", warning_message: "old SDK", type: "create_session" },
    }));
    const sink = capture();
    const s = new ServiceClient({
      apiKey: "tml-k",
      baseUrl: mock.url,
      logger: sink,
      tags: ["exp", "exp", "v2"],
      projectId: "proj",
      userMetadata: { owner: "me" },
    });
    expect(await s.sessionId()).toBe("s9");
    expect(bodyJson(mock.server.requestsTo("POST /api/v1/create_session")[0]!)).toEqual({
      tags: ["exp", "v2"],
      user_metadata: { owner: "me" },
      sdk_version: "0.25.0",
      project_id: "proj",
      type: "create_session",
    });
    expect(sink.lines.some((l) => l.includes("old SDK"))).toBe(true);
    await s.close();
  });

  it("heartbeats every interval, warns after the silence limit, stops on close", async () => {
    const sink = capture();
    const s = new ServiceClient({
      apiKey: "tml-k",
      baseUrl: mock.url,
      logger: sink,
      timings: { heartbeatIntervalMs: 40, heartbeatWarnAfterMs: 150 },
    });
    await s.sessionId();
    await new Promise((r) => setTimeout(r, 400));
    const beats = mock.server.requestsTo("POST /api/v1/session_heartbeat");
    expect(beats.length).toBeGreaterThanOrEqual(3);
    expect(bodyJson(beats[0]!)).toEqual({ session_id: "sess-1", type: "session_heartbeat" });
    expect(beats[0]!.headers["x-stainless-read-timeout"]).toBe("10");
    mock.server.on("POST /api/v1/session_heartbeat", () => ({ status: 500, json: {} }));
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.lines.filter((l) => l.includes("will be terminated"))).toHaveLength(1);
    // Failed heartbeats are not retried by the HTTP layer.
    const failed = mock.server
      .requestsTo("POST /api/v1/session_heartbeat")
      .filter((r) => r.headers["x-stainless-retry-count"] !== "0");
    expect(failed).toHaveLength(0);
    await s.close();
    const count = mock.server.requestsTo("POST /api/v1/session_heartbeat").length;
    await new Promise((r) => setTimeout(r, 120));
    expect(mock.server.requestsTo("POST /api/v1/session_heartbeat").length).toBe(count);
  });

  it("sends no telemetry by default, and does when enabled", async () => {
    const off = new ServiceClient({ apiKey: "tml-k", baseUrl: mock.url, logLevel: "off", env: {} });
    await off.sessionId();
    await off.close();
    expect(mock.server.requestsTo("POST /api/v1/telemetry")).toHaveLength(0);
    const on = new ServiceClient({
      apiKey: "tml-k",
      baseUrl: mock.url,
      logLevel: "off",
      telemetry: true,
    });
    await on.sessionId();
    await Promise.all([on.close(), on.close()]);
    const sent = mock.server.requestsTo("POST /api/v1/telemetry").map((r) => bodyJson(r));
    const events = sent.flatMap((b) => b.events as Array<{ event: string }>);
    expect(events.map((e) => e.event)).toEqual(["SESSION_START", "SESSION_END"]);
    expect(sent[0]!.session_id).toBe("sess-1");
  });

  it("a closed client refuses new work", async () => {
    const s = new ServiceClient({ apiKey: "tml-k", baseUrl: mock.url, logLevel: "off" });
    await s.close();
    await expect(s.createLoraTrainingClient("m")).rejects.toBeInstanceOf(TinkerError);
  });
});

/**
 * `tinker-ts serve --api-key` accepts only keys Tinker clients will send (`tml-...`): any other
 * key is refused at start with the reason, instead of a server every client then refuses.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { ServiceClient } from "../../src/client/service-client.js";

async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = "";
  vi.spyOn(process.stdout, "write").mockImplementation(() => true);
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await runCli(args), stderr };
  } finally {
    vi.restoreAllMocks();
  }
}

describe("serve --api-key", () => {
  const saved = process.env.TINKER_TS_SERVER_API_KEY;
  afterEach(() => {
    if (saved === undefined) delete process.env.TINKER_TS_SERVER_API_KEY;
    else process.env.TINKER_TS_SERVER_API_KEY = saved;
  });

  it("refuses a key without the tml- prefix before starting, saying why", async () => {
    delete process.env.TINKER_TS_SERVER_API_KEY;
    const r = await cli(["serve", "--port", "0", "--api-key", "secret"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--api-key must start with "tml-".*Tinker clients.*refuse/);
    expect((await cli(["serve", "--port", "0", "--api-key", ""])).code).toBe(2);
  });

  it("refuses the same from TINKER_TS_SERVER_API_KEY", async () => {
    process.env.TINKER_TS_SERVER_API_KEY = "secret";
    const r = await cli(["serve", "--port", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/TINKER_TS_SERVER_API_KEY must start with "tml-"/);
  });

  it("the client indeed refuses such a key, and accepts a tml- key", () => {
    expect(() => new ServiceClient({ apiKey: "secret", baseUrl: "http://127.0.0.1:9" })).toThrow(
      /tml-/,
    );
    const ok = new ServiceClient({ apiKey: "tml-secret", baseUrl: "http://127.0.0.1:9" });
    expect(ok).toBeInstanceOf(ServiceClient);
  });
});

describe("serve with a tml- key", () => {
  it("starts and answers only requests carrying the key", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "tinker-ts-serve-key-"));
    const { spawn } = await import("node:child_process");
    const main = new URL("../../src/cli/main.ts", import.meta.url).pathname;
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        main,
        "serve",
        "--port",
        "0",
        "--data-dir",
        dataDir,
        "--preset",
        "tiny-bytes",
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, TINKER_TS_SERVER_API_KEY: "tml-test-key" },
      },
    );
    try {
      let out = "";
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.on("exit", (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
      });
      expect(out).toMatch(/auth:\s+X-API-Key required/);
      const caps = `${url}/api/v1/get_server_capabilities`;
      expect((await fetch(caps)).status).toBe(401);
      expect((await fetch(caps, { headers: { "x-api-key": "tml-test-key" } })).status).toBe(200);
      const exited = new Promise((r) => child.on("exit", r));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

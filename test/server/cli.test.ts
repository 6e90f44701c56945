import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { TINKER_TS_VERSION } from "../../src/client/core/version.js";
import { tempDir } from "./helpers.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

/** Runs the CLI in process, capturing what it writes. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await runCli(args).catch((e: unknown) => {
      stderr += e instanceof Error ? e.message : String(e);
      return 1;
    });
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe("tinker-ts CLI", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("prints the version and the command table", async () => {
    expect(await cli(["--version"])).toMatchObject({ code: 0, stdout: `${TINKER_TS_VERSION}\n` });
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/serve\s+Run a local Tinker-compatible server/);
    const unknown = await cli(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
  });

  it("documents every serve option and the presets", async () => {
    const help = await cli(["serve", "--help"]);
    expect(help.code).toBe(0);
    for (const opt of [
      "--port",
      "--host",
      "--data-dir",
      "--model-dir",
      "--preset",
      "--api-key",
      "tiny-bytes",
      "tiny-qwen3",
      "TINKER_BASE_URL",
    ]) {
      expect(help.stdout).toContain(opt);
    }
    const bad = await cli(["serve", "--prot", "1"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--prot/);
    const badPort = await cli(["serve", "--port", "http"]);
    expect(badPort.code).toBe(2);
  });

  it("refuses to serve beyond loopback without an API key", async () => {
    const prev = process.env.TINKER_TS_SERVER_API_KEY;
    delete process.env.TINKER_TS_SERVER_API_KEY;
    try {
      const r = await cli(["serve", "--host", "0.0.0.0", "--port", "0"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/apiKey|API key/);
    } finally {
      if (prev !== undefined) process.env.TINKER_TS_SERVER_API_KEY = prev;
    }
  });

  it("fails at start on a missing --model-dir, with the reason, and documents the limits", async () => {
    const tmp = await tempDir("cli-modeldir");
    try {
      const r = await cli([
        "serve",
        "--port",
        "0",
        "--data-dir",
        tmp.dir,
        "--model-dir",
        `${tmp.dir}/no-such-model`,
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/no-such-model" does not exist/);
    } finally {
      await tmp.cleanup();
    }
    const help = await cli(["serve", "--help"]);
    expect(help.stdout).toMatch(
      /Limits[\s\S]*engine memory[\s\S]*num_samples[\s\S]*checkpoint names/,
    );
  });

  it("serves until SIGTERM, then shuts down cleanly", async () => {
    const tmp = await tempDir("cli-serve");
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        MAIN,
        "serve",
        "--port",
        "0",
        "--data-dir",
        tmp.dir,
        "--preset",
        "tiny-bytes",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    try {
      let stdout = "";
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          stdout += d.toString();
          const m = /listening on (http:\/\/\S+)/.exec(stdout);
          if (m) resolve(m[1]!);
        });
        child.on("exit", (code) => reject(new Error(`serve exited with ${code}: ${stdout}`)));
      });
      expect(stdout).toMatch(/models:\s+tiny-bytes\n/);
      expect((await fetch(`${url}/api/v1/healthz`)).status).toBe(200);
      const exited = new Promise((r) => child.on("exit", r));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      await tmp.cleanup();
    }
  });

  it("runs as a process entry point", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, "--version"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    const code = await new Promise((r) => child.on("exit", r));
    expect(code).toBe(0);
    expect(stdout).toBe(`${TINKER_TS_VERSION}\n`);
  });
});

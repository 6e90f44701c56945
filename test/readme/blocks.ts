/**
 * The README's shell blocks, and how to run them as a user would. Every ```sh block is preceded
 * by a marker saying where it runs:
 *
 *   <!-- readme-test: run -->        in the clone (test/readme, the default test run)
 *   <!-- readme-test: slow ... -->   in a fresh clone in a temporary folder (TINKER_TS_SLOW_TESTS)
 *   <!-- readme-test: installed -->  in a folder where the packed tarball is installed
 *                                    (test/package/tarball.test.ts)
 *   <!-- readme-test: skip (why) --> not run
 *
 * Lines run in order, in one shell per stretch of lines (so `cd` carries on). Lines that need a
 * Tinker key (`TINKER_API_KEY=...`) run only when TINKER_API_KEY is set, with that key. A `serve`
 * command (other than `--help`) is started, probed and stopped with Ctrl-C's SIGINT: its `--port` becomes 0 (a free
 * port: the machine may use 8000), nothing else changes.
 */
import { execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

export const README = join(dirname(fileURLToPath(import.meta.url)), "../../README.md");

export type BlockMode = "run" | "slow" | "installed" | "skip";

export interface ShellBlock {
  mode: BlockMode;
  /** The marker's words after the mode (the reason of a skip). */
  note: string;
  /** 1-based line of the opening fence. */
  line: number;
  lines: string[];
}

/** Every ```sh / ```bash block of the README with its marker (undefined mode: no marker). */
export function readmeShellBlocks(
  text = readFileSync(README, "utf8"),
): Array<Omit<ShellBlock, "mode"> & { mode: BlockMode | undefined }> {
  const rows = text.split("\n");
  const out: Array<Omit<ShellBlock, "mode"> & { mode: BlockMode | undefined }> = [];
  let marker: { mode: BlockMode; note: string } | undefined;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const m = /^<!-- readme-test: (run|slow|installed|skip)\b\s*(.*?)\s*-->$/.exec(row);
    if (m) {
      marker = { mode: m[1] as BlockMode, note: m[2]! };
      continue;
    }
    if (/^```(sh|bash|shell)\s*$/.test(row)) {
      const start = i;
      const lines: string[] = [];
      for (i++; i < rows.length && !rows[i]!.startsWith("```"); i++) lines.push(rows[i]!);
      out.push({ mode: marker?.mode, note: marker?.note ?? "", line: start + 1, lines });
      marker = undefined;
    } else if (row.startsWith("```")) {
      // Another language's block: skip to its end, and forget a marker placed above it.
      for (i++; i < rows.length && !rows[i]!.startsWith("```"); i++);
      marker = undefined;
    }
  }
  return out;
}

/** What running a block did, line by line (for the test's assertions and its log). */
export interface BlockRun {
  /** Lines not run, with the reason. */
  skipped: Array<{ line: string; reason: string }>;
  /** Output of each stretch of plain lines. */
  outputs: string[];
  /**
   * Each started server: its URL, the models it served, how it ended after SIGINT (`signal` is
   * set when an `npm run` wrapper died of it) and what it wrote to stderr.
   */
  servers: Array<{
    line: string;
    url: string;
    models: string[];
    exitCode: number | null;
    signal: NodeJS.Signals | null;
    stderr: string;
  }>;
}

const CLOUD = /\bTINKER_API_KEY=/;
const SERVE = /\bserve\b/;

function isServer(line: string): boolean {
  return SERVE.test(line) && !/--help\b/.test(line);
}

/** Runs a block's lines in `cwd` with `env` (TINKER_API_KEY is removed except for cloud lines). */
export async function runBlock(
  block: Pick<ShellBlock, "lines">,
  cwd: string,
  env: NodeJS.ProcessEnv,
  options: { preinstalled?: boolean } = {},
): Promise<BlockRun> {
  const result: BlockRun = { skipped: [], outputs: [], servers: [] };
  const localEnv = { ...env };
  delete localEnv.TINKER_API_KEY;
  delete localEnv.TINKER_BASE_URL;
  let pending: string[] = [];
  let dir = cwd;
  const flush = async () => {
    if (pending.length === 0) return;
    // The shell prints its final directory, so later stretches start where a `cd` left off.
    const script = `set -euo pipefail\n${pending.join("\n")}\necho "__cwd__=$PWD"`;
    pending = [];
    const { stdout, stderr } = await execFileP("bash", ["-c", script], {
      cwd: dir,
      env: localEnv,
      maxBuffer: 64 << 20,
      timeout: 600_000,
    });
    const at = stdout.lastIndexOf("__cwd__=");
    dir = stdout.slice(at + "__cwd__=".length).trim();
    result.outputs.push(stdout.slice(0, at) + stderr);
  };
  for (const raw of block.lines) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (options.preinstalled && /^npm ci\b/.test(line)) {
      result.skipped.push({ line, reason: "already installed: this test runs in the clone" });
      continue;
    }
    if (CLOUD.test(line)) {
      const key = env.TINKER_API_KEY;
      if (!key) {
        result.skipped.push({ line, reason: "needs TINKER_API_KEY (Tinker cloud); not set" });
        continue;
      }
      await flush();
      const withKey = line.replace(/TINKER_API_KEY=\S+/, `TINKER_API_KEY=${key}`);
      const { stdout, stderr } = await execFileP("bash", ["-c", withKey], {
        cwd: dir,
        env: { ...localEnv },
        maxBuffer: 64 << 20,
        timeout: 600_000,
      });
      result.outputs.push(stdout + stderr);
      continue;
    }
    if (isServer(line)) {
      await flush();
      result.servers.push(await runServer(line, dir, localEnv));
      continue;
    }
    pending.push(line);
  }
  await flush();
  return result;
}

async function runServer(
  line: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<BlockRun["servers"][number]> {
  const command = line.replace(/--port\s+\d+/, "--port 0");
  const child = spawn("bash", ["-c", `exec ${command}`], {
    cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  // "close" waits for every process holding the output pipes (npm, tsx and node), not just bash.
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  try {
    let out = "";
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`"${line}" did not start: ${out}${err}`)),
        120_000,
      );
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`"${line}" exited with ${code}: ${out}${err}`));
      });
    });
    const health = await fetch(`${url}/api/v1/healthz`);
    if (health.status !== 200) throw new Error(`${url}/api/v1/healthz answered ${health.status}`);
    const caps = (await (await fetch(`${url}/api/v1/get_server_capabilities`)).json()) as {
      supported_models?: Array<{ model_name: string }>;
    };
    const models = (caps.supported_models ?? []).map((m) => m.model_name);
    // What Ctrl-C in a terminal does: SIGINT to the whole foreground process group (an `npm run`
    // wrapper does not pass on a signal sent to it alone).
    process.kill(-child.pid!, "SIGINT");
    const { code, signal } = await closed;
    return { line, url, models, exitCode: code, signal, stderr: err };
  } finally {
    if (child.exitCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

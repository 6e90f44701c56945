/**
 * The README's quick start runs as written: `npx tsx examples/quickstart.ts` with no API key
 * trains on the embedded local engine and samples, and its loss goes down.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

describe("examples", () => {
  it("quickstart.ts trains on the embedded engine with no API key, lowers the loss and samples", async () => {
    const cache = await mkdtemp(join(tmpdir(), "tinker-ts-quickstart-"));
    try {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        TINKER_TS_CACHE_DIR: cache,
        QUICKSTART_STEPS: "20",
      };
      delete env.TINKER_API_KEY;
      delete env.TINKER_BASE_URL;
      const { stdout, stderr } = await run(
        process.execPath,
        ["--import", "tsx", "examples/quickstart.ts"],
        { env, timeout: 120_000 },
      );
      const losses = [...stdout.matchAll(/loss\/token (\d+\.\d+)/g)].map((m) => Number(m[1]));
      expect(losses.length).toBeGreaterThanOrEqual(2);
      expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.6);
      expect(stdout).toMatch(/^sample: The quick brown/m);
      expect(stderr).toContain("local CPU engine");
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  });

  it("chat-datum.ts renders a trained assistant turn and grades the answer", async () => {
    const cache = await mkdtemp(join(tmpdir(), "tinker-ts-chat-datum-"));
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, TINKER_TS_CACHE_DIR: cache, NO_COLOR: "1" };
      const { stdout } = await run(
        process.execPath,
        ["--import", "tsx", "examples/chat-datum.ts"],
        {
          env,
          timeout: 60_000,
        },
      );
      // Only the assistant's reply (and the role_colon stop marker) is inside the trained span.
      expect(stdout).toContain("Assistant:[[ 12 * 7 = 84, so the answer is \\boxed{84}.");
      expect(stdout).not.toMatch(/\[\[[^\]]*What is 12/);
      expect(stdout).toContain("extracted 84, correct: true");
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  });

  it("the README's quick-start code block runs as written", async () => {
    const readme = await readFile("README.md", "utf8");
    const block = /## Quick start[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toContain("new ServiceClient()");
    const cache = await mkdtemp(join(tmpdir(), "tinker-ts-readme-"));
    try {
      const file = join(cache, "readme-quickstart.mts");
      await writeFile(file, block!);
      const env: NodeJS.ProcessEnv = { ...process.env, TINKER_TS_CACHE_DIR: cache };
      delete env.TINKER_API_KEY;
      delete env.TINKER_BASE_URL;
      const { stdout } = await run(process.execPath, ["--import", "tsx", file], {
        env,
        timeout: 120_000,
      });
      const losses = stdout
        .split("\n")
        .map((line) => /^\d+ (\d+(\.\d+)?)/.exec(line)?.[1])
        .filter((x): x is string => x !== undefined)
        .map(Number);
      expect(losses).toHaveLength(40);
      expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.5);
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  });
});

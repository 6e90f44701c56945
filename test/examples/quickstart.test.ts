/**
 * The README's quick start runs as written: `npx tsx examples/quickstart.ts` with no API key
 * trains on the embedded local engine and samples, and its loss goes down.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

describe("examples/quickstart.ts", () => {
  it("trains on the embedded engine with no API key, lowers the loss and samples", async () => {
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
});

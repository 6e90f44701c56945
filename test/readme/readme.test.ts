/**
 * The README's commands work as written (see blocks.ts for the markers and the rules). The
 * `run` blocks run here in the clone; the `slow` ones in a fresh clone in a temporary folder
 * under TINKER_TS_SLOW_TESTS; the `installed` ones in test/package/tarball.test.ts.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listPresets } from "../../src/local/engine/io/presets.js";
import { getLr, recommendedRenderer } from "../../src/renderers/model-info.js";
import { loadTokenizer } from "../../src/tokenizers/loader.js";
import { README, readmeShellBlocks, runBlock } from "./blocks.js";

const run = promisify(execFile);
const REPO = dirname(README);
const blocks = readmeShellBlocks();

function logSkips(skipped: Array<{ line: string; reason: string }>): void {
  for (const s of skipped) console.log(`README: skipped \`${s.line}\`: ${s.reason}`);
}

describe("README shell blocks", () => {
  let work: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "tinker-ts-readme-"));
    env = { ...process.env, TINKER_TS_CACHE_DIR: join(work, "cache") };
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("every shell block says where it runs", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    expect(blocks.filter((b) => b.mode === undefined).map((b) => b.line)).toEqual([]);
    for (const b of blocks.filter((x) => x.mode === "skip")) {
      console.log(`README: block at line ${b.line} skipped: ${b.note}`);
      expect(b.note).not.toBe("");
    }
  });

  it("states the presets' facts as the code has them", async () => {
    const text = readFileSync(README, "utf8");
    for (const p of listPresets()) {
      const row = text.split("\n").find((l) => l.startsWith(`| \`${p.name}\``));
      expect(row, p.name).toBeDefined();
      const tokenizer = await loadTokenizer(p.name);
      const c = p.config;
      expect(row).toContain(`d=${c.hiddenSize}, ${c.numLayers} layers`);
      expect(row).toContain(`\`${recommendedRenderer(p.name)}\``);
      expect(row).toContain(`| ${getLr(p.name).toExponential()} |`);
      const ids = tokenizer.vocabSize.toLocaleString("en-US");
      expect(row).toMatch(new RegExp(`vocab ${ids}\\b|${ids} ids`));
      if (c.vocabSize !== tokenizer.vocabSize) {
        expect(row).toContain(`${c.vocabSize.toLocaleString("en-US")} rows`);
      }
    }
  });

  const here = blocks.filter((b) => b.mode === "run");
  it.each(here.map((b) => [b.line, b] as const))(
    "the block at line %i runs in the clone",
    async (_line, block) => {
      const result = await runBlock(block, REPO, env, { preinstalled: true });
      logSkips(result.skipped);
      const serveLines = block.lines.filter((l) => /\bserve\b/.test(l) && !l.includes("--help"));
      expect(result.servers.map((s) => s.line)).toEqual(serveLines.map((l) => l.trim()));
      for (const server of result.servers) {
        expect(server.models).toEqual(["tiny-bytes", "tiny-qwen3"]);
        // Stopped cleanly: the server said so, and the process (or its npm wrapper) ended on it.
        expect(server.stderr).toContain("tinker-ts serve: shutting down");
        expect(server.exitCode === 0 || server.signal === "SIGINT").toBe(true);
      }
      const text = result.outputs.join("\n");
      if (block.lines.some((l) => l.includes("quickstart.ts"))) {
        expect(text).toMatch(/^sample: The quick brown/m);
      }
      if (block.lines.some((l) => l.includes("--help"))) {
        expect(text).toContain("vocab 264");
        expect(text).toContain('Start it with "tml-"');
      }
    },
    300_000,
  );

  const slow = blocks.filter((b) => b.mode === "slow");
  it.runIf(process.env.TINKER_TS_SLOW_TESTS).each(slow.map((b) => [b.line, b] as const))(
    "the block at line %i runs in a fresh clone (slow)",
    async (_line, block) => {
      // "A clone of this repository (the folder tinker-ts)": that, with nothing else beside it, in
      // a temporary folder. A block that does not install (npm ci) itself gets the clone's
      // dependencies linked in, as a developer's clone has them.
      const clone = join(work, "tinker-ts");
      await run("git", ["clone", "--quiet", "--no-hardlinks", REPO, clone]);
      try {
        if (!block.lines.some((l) => /^\s*npm ci\b/.test(l))) {
          await symlink(join(REPO, "node_modules"), join(clone, "node_modules"), "dir");
        }
        const result = await runBlock(block, clone, env);
        logSkips(result.skipped);
        if (block.lines.some((l) => l.includes("--version"))) {
          expect(result.outputs.join("\n")).toMatch(/^\d+\.\d+\.\d+$/m);
        }
      } finally {
        await rm(clone, { recursive: true, force: true });
        await rm(join(work, "my-app"), { recursive: true, force: true });
      }
    },
    900_000,
  );
});

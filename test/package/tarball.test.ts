/**
 * The package as a user gets it: `npm pack` (which builds through `prepack`), the tarball's
 * contents and size, then an install into an empty folder from the npm cache and, with no network
 * and an empty Hugging Face cache, a five-line sample on each preset through the root entry (ESM),
 * both entries from CommonJS, the `tinker-ts` bin, the README's installed-package shell blocks,
 * and the types of each entry (ESM and CJS).
 *
 * Slow (a build and an install: over a minute on two cores), so it runs under
 * TINKER_TS_SLOW_TESTS=1; .ci/run runs it as its own step.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readmeShellBlocks, runBlock } from "../readme/blocks.js";

const run = promisify(execFile);
const REPO = join(dirname(fileURLToPath(import.meta.url)), "../..");
const TSC = join(REPO, "node_modules/typescript/bin/tsc");

/** The stated limits: the compressed Qwen3 tokenizer is 1.6 MB of it. */
const MAX_PACKED_BYTES = 3_000_000;
const MAX_UNPACKED_BYTES = 6_000_000;

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  files: Array<{ path: string; size: number }>;
}

const SAMPLE = `import { ModelInput, ServiceClient } from "tinker-ts";
const service = new ServiceClient();
const training = await service.createLoraTrainingClient(process.argv[2], { rank: 4 });
const tokenizer = await training.getTokenizer();
const sampler = await training.saveWeightsAndGetSamplingClient();
const { sequences } = await sampler.sample(ModelInput.fromInts(tokenizer.encode("Hello")), 1, { maxTokens: 4 });
console.log(JSON.stringify({ hello: tokenizer.encode("Hello"), sampled: sequences[0].tokens.length }));
await service.close();
`;

const CJS = `const root = require("tinker-ts");
const local = require("tinker-ts/local");
let sameErrors = false;
try { local.getPreset("nope"); } catch (e) { sameErrors = e instanceof root.TinkerValidationError; }
root.loadTokenizer("tiny-qwen3").then((t) => {
  console.log(JSON.stringify({ sameErrors, presets: local.listPresets().map((p) => p.name), hi: t.encode("Hi") }));
});
`;

const TYPES_ESM = `import { ServiceClient, type ChatTokenizer } from "tinker-ts";
import { startLocalServer, type LocalServer } from "tinker-ts/local";
export const s: ServiceClient = new ServiceClient({ local: true });
export const start: (o: { port: number }) => Promise<LocalServer> = startLocalServer;
export type T = ChatTokenizer;
`;

const TYPES_CJS = `import root = require("tinker-ts");
import local = require("tinker-ts/local");
export const make = (): root.ServiceClient => new root.ServiceClient({ local: true });
export const presets: local.ModelPreset[] = local.listPresets();
`;

describe.runIf(process.env.TINKER_TS_SLOW_TESTS)("the packed tarball", () => {
  let work: string;
  let pack: PackResult;
  let app: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "tinker-ts-pack-"));
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", work], {
      cwd: REPO,
      maxBuffer: 64 << 20,
    });
    // prepack's build output precedes the JSON report.
    pack = (JSON.parse(stdout.slice(stdout.indexOf("[\n"))) as PackResult[])[0]!;
    app = join(work, "app");
    await mkdir(app);
    await writeFile(
      join(app, "package.json"),
      JSON.stringify({ name: "app", private: true, type: "module" }),
    );
    await run(
      "npm",
      ["install", join(work, pack.filename), "--prefer-offline", "--no-audit", "--no-fund"],
      { cwd: app },
    );
    env = { ...process.env };
    delete env.TINKER_API_KEY;
    delete env.TINKER_BASE_URL;
    Object.assign(env, {
      HF_HUB_OFFLINE: "1",
      HF_HUB_CACHE: join(work, "empty-hf"),
      HF_ENDPOINT: "http://127.0.0.1:9", // any hub request fails at once
      TINKER_TS_CACHE_DIR: join(work, "cache"),
    });
  }, 600_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("holds LICENSE, README, the entries with their types, and nothing else", () => {
    const paths = pack.files.map((f) => f.path);
    for (const p of [
      "LICENSE",
      "README.md",
      "package.json",
      "dist/index.js",
      "dist/index.cjs",
      "dist/index.d.ts",
      "dist/index.d.cts",
      "dist/local.js",
      "dist/local.cjs",
      "dist/local.d.ts",
      "dist/local.d.cts",
      "dist/cli.js",
      "dist/worker.js",
      "dist/assets/qwen3-tokenizer/tokenizer.json.br",
      "dist/assets/qwen3-tokenizer/tokenizer_config.json",
      "dist/assets/qwen3-tokenizer/NOTICE",
    ]) {
      expect(paths, p).toContain(p);
    }
    const unexpected = paths.filter(
      (p) =>
        !["LICENSE", "README.md", "package.json"].includes(p) &&
        !/^dist\/[\w.-]+\.(js|cjs|d\.ts|d\.cts)$/.test(p) &&
        !p.startsWith("dist/assets/qwen3-tokenizer/"),
    );
    expect(unexpected).toEqual([]);
    expect(paths.filter((p) => p.endsWith(".map"))).toEqual([]);
  });

  it(`stays under ${MAX_PACKED_BYTES} bytes packed and ${MAX_UNPACKED_BYTES} unpacked`, () => {
    console.log(`tarball: ${pack.size} bytes packed, ${pack.unpackedSize} unpacked`);
    expect(pack.size).toBeLessThan(MAX_PACKED_BYTES);
    expect(pack.unpackedSize).toBeLessThan(MAX_UNPACKED_BYTES);
  });

  it.each([
    ["tiny-bytes", [72, 101, 108, 108, 111]],
    ["tiny-qwen3", [9707]],
  ])(
    "a five-line sample on %s runs offline through the root entry",
    async (preset, hello) => {
      await writeFile(join(app, "sample.mjs"), SAMPLE);
      const { stdout } = await run(process.execPath, ["sample.mjs", preset], {
        cwd: app,
        env,
        timeout: 120_000,
      });
      const out = JSON.parse(stdout.trim().split("\n").at(-1)!) as {
        hello: number[];
        sampled: number;
      };
      expect(out.hello).toEqual(hello);
      // Unseeded sampling may draw an end-of-sequence token before maxTokens.
      expect(out.sampled).toBeGreaterThanOrEqual(1);
      expect(out.sampled).toBeLessThanOrEqual(4);
    },
    180_000,
  );

  it("works from CommonJS, with one copy of the errors across both entries", async () => {
    await writeFile(join(app, "check.cjs"), CJS);
    const { stdout } = await run(process.execPath, ["check.cjs"], { cwd: app, env });
    expect(JSON.parse(stdout.trim())).toEqual({
      sameErrors: true,
      presets: ["tiny-bytes", "tiny-qwen3"],
      hi: [13048],
    });
  });

  it("links the tinker-ts bin", async () => {
    const { stdout } = await run("npx", ["--no-install", "tinker-ts", "--version"], {
      cwd: app,
      env,
    });
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("runs the README's installed-package shell blocks as written", async () => {
    const blocks = readmeShellBlocks().filter((b) => b.mode === "installed");
    expect(blocks.length).toBeGreaterThan(0);
    for (const block of blocks) {
      const result = await runBlock(block, app, env);
      expect(result.skipped).toEqual([]);
      for (const server of result.servers) {
        expect(server.models).toEqual(["tiny-bytes", "tiny-qwen3"]);
        expect(server.stderr).toContain("tinker-ts serve: shutting down");
        expect(server.exitCode === 0 || server.signal === "SIGINT").toBe(true);
      }
      if (block.lines.some((l) => l.includes("--help"))) {
        expect(result.outputs.join("\n")).toContain("vocab 264");
      }
    }
  }, 180_000);

  it("types each entry for ESM and CommonJS consumers", async () => {
    await writeFile(join(app, "types.mts"), TYPES_ESM);
    await writeFile(join(app, "types.cts"), TYPES_CJS);
    await run(
      process.execPath,
      [
        TSC,
        "--noEmit",
        "--strict",
        "--module",
        "nodenext",
        "--moduleResolution",
        "nodenext",
        "--types",
        "node",
        "--typeRoots",
        join(REPO, "node_modules/@types"),
        "types.mts",
        "types.cts",
      ],
      { cwd: app },
    );
  }, 120_000);
});

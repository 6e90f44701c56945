/**
 * `tinker-ts models`, `runs list` and `checkpoints list|download|delete|publish` against the real
 * local server: tables and --json, a download unpacked whole, and bad input (a malformed or
 * nonexistent tinker:// path, a bad flag, an unknown action) in one line with exit 1 or 2.
 */
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { captureCli } from "./capture.js";
import { type CliServer, startCliServer } from "./local-server.js";

let ctx: CliServer;
let ck: Awaited<ReturnType<CliServer["checkpoints"]>>;
beforeAll(async () => {
  ctx = await startCliServer("cli-rest");
  ck = await ctx.checkpoints();
});
afterAll(async () => {
  await ctx.close();
});

const cli = (...args: string[]) => captureCli(() => runCli(args));
const oneLine = (s: string) => expect(s.trim().split("\n")).toHaveLength(1);

describe("tinker-ts models / runs", () => {
  it("lists the server's models", async () => {
    const r = await cli("models");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^model\s+context\n/);
    expect(r.stdout).toMatch(/^tiny-bytes\s+\d+$/m);
    const json = JSON.parse((await cli("models", "--json")).stdout);
    expect(json).toContainEqual(expect.objectContaining({ modelName: "tiny-bytes" }));
    expect((await cli("models", "extra")).code).toBe(2);
  });

  it("lists training runs", async () => {
    const r = await cli("runs", "list");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(ck.runId);
    expect(r.stdout).toMatch(/tiny-bytes\s+lora r4/);
    const json = JSON.parse((await cli("runs", "list", "--json", "--limit", "5")).stdout);
    expect(json.trainingRuns.map((t: { trainingRunId: string }) => t.trainingRunId)).toContain(
      ck.runId,
    );
    const bad = await cli("runs", "list", "--limit", "many");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /--limit must be an integer >= 1, got "many" \(see tinker-ts runs --help\)/,
    );
    expect((await cli("runs", "show")).code).toBe(2);
    expect((await cli("runs")).code).toBe(2);
  });
});

describe("tinker-ts checkpoints", () => {
  it("lists a run's checkpoints and all of them", async () => {
    const r = await cli("checkpoints", "list", ck.runId);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(ck.statePath);
    expect(r.stdout).toContain(ck.samplerPath);
    const all = JSON.parse((await cli("checkpoints", "list", "--json")).stdout);
    expect(all.checkpoints.map((c: { tinkerPath: string }) => c.tinkerPath)).toContain(
      ck.samplerPath,
    );
    const missing = await cli("checkpoints", "list", "no-such-run");
    expect(missing.code).toBe(1);
    oneLine(missing.stderr);
  });

  it("downloads and unpacks a checkpoint; refuses to overwrite without --force", async () => {
    const out = join(ctx.dir, "download");
    const r = await cli("checkpoints", "download", ck.samplerPath, "--out", out);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect((await readdir(out, { recursive: true })).length).toBeGreaterThan(0);
    const again = await cli("checkpoints", "download", ck.samplerPath, "--out", out);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists; pass --force/);
    expect(
      (await cli("checkpoints", "download", ck.samplerPath, "--out", out, "--force")).code,
    ).toBe(0);

    const none = join(ctx.dir, "none");
    const gone = await cli(
      "checkpoints",
      "download",
      `tinker://${ck.runId}/weights/nope`,
      "--out",
      none,
    );
    expect(gone.code).toBe(1);
    oneLine(gone.stderr);
    expect(existsSync(none)).toBe(false);
    const malformed = await cli("checkpoints", "download", "tinker://bad", "--out", none);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/tinker:\/\/bad.*needs exactly 3/);
    expect(existsSync(none)).toBe(false);
  });

  it("publishes, unpublishes and deletes", async () => {
    expect((await cli("checkpoints", "publish", ck.statePath)).stdout).toBe(
      `published ${ck.statePath}\n`,
    );
    const twice = await cli("checkpoints", "publish", ck.statePath);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/is already public; pass --unpublish to make it private/);
    const gone = await cli("checkpoints", "publish", `tinker://${ck.runId}/weights/nope`);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/no checkpoint .*nope; list them with tinker-ts checkpoints list/);
    oneLine(gone.stderr);
    expect((await cli("checkpoints", "publish", ck.statePath, "--unpublish")).code).toBe(0);
    const private_ = await cli("checkpoints", "publish", ck.statePath, "--unpublish");
    expect(private_.stderr).toMatch(/is already private/);

    const del = await cli("checkpoints", "delete", ck.statePath);
    expect(del.code).toBe(0);
    expect(del.stdout).toBe(`deleted ${ck.statePath}\n`);
    expect((await cli("checkpoints", "list", ck.runId)).stdout).not.toContain(ck.statePath);
    const again = await cli("checkpoints", "delete", ck.statePath);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^tinker-ts checkpoints: /);
    oneLine(again.stderr);
  });

  it("usage errors", async () => {
    const unknown = await cli("checkpoints", "copy");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /unknown action "copy"; the actions are list, download, delete, publish/,
    );
    expect((await cli("checkpoints")).code).toBe(2);
    expect((await cli("checkpoints", "delete")).code).toBe(2);
    expect((await cli("checkpoints", "delete", "s3://bucket/x")).code).toBe(2);
    const help = await cli("checkpoints", "--help");
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("TINKER_BASE_URL");
    const top = await cli();
    expect(top.code).toBe(2);
    const topHelp = await cli("--help");
    for (const name of ["serve", "sample", "eval", "report", "models", "checkpoints", "runs"]) {
      expect(topHelp.stdout).toMatch(new RegExp(`^  ${name}\\s`, "m"));
    }
  });
});

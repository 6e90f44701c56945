import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  isAtomicTempName,
  recoverAtomicDir,
  recoverAtomicDirsIn,
  replaceDirAtomic,
  tempSiblingPath,
  tinkerCacheDir,
  writeDirAtomic,
  writeFileAtomic,
  writeJsonAtomic,
} from "../../src/fs/atomic.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tinker-atomic-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("writeFileAtomic", () => {
  it("creates parents, overwrites, and leaves no temp files", async () => {
    const p = join(dir, "a", "b", "f.txt");
    await writeFileAtomic(p, "one");
    expect(await readFile(p, "utf8")).toBe("one");
    await writeFileAtomic(p, new Uint8Array([104, 105]));
    expect(await readFile(p, "utf8")).toBe("hi");
    await writeFileAtomic(p, [new TextEncoder().encode("ab"), new TextEncoder().encode("cd")]);
    expect(await readFile(p, "utf8")).toBe("abcd");
    expect(await readdir(join(dir, "a", "b"))).toEqual(["f.txt"]);
  });

  it("a write that fails midway leaves the old file intact and removes the temp file", async () => {
    const p = join(dir, "state.json");
    await writeFileAtomic(p, "old content");
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(1000).fill(65);
      throw new Error("disk on fire");
    }
    await expect(writeFileAtomic(p, failing())).rejects.toThrow("disk on fire");
    expect(await readFile(p, "utf8")).toBe("old content");
    expect(await readdir(dir)).toEqual(["state.json"]);
  });

  it("a process killed mid-write leaves the old file intact", async () => {
    const p = join(dir, "big.bin");
    await writeFileAtomic(p, "old");
    const script = join(dir, "child.mts");
    const atomicPath = resolve(import.meta.dirname, "../../src/fs/atomic.ts");
    await writeFile(
      script,
      `import { writeFileAtomic } from ${JSON.stringify(atomicPath)};
async function* slow() {
  for (let i = 0; ; i++) {
    yield new Uint8Array(65536).fill(i & 255);
    if (i === 3) process.stdout.write("started\\n");
    await new Promise((r) => setTimeout(r, 5));
  }
}
await writeFileAtomic(${JSON.stringify(p)}, slow());
`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", script], {
      cwd: resolve(import.meta.dirname, "../.."),
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((res, rej) => {
      child.stdout.on("data", (b: Buffer) => {
        if (b.toString().includes("started")) {
          child.kill("SIGKILL");
          res();
        }
      });
      child.on("exit", (code) => rej(new Error(`child exited early with ${code}`)));
    });
    await new Promise((r) => child.on("close", r));
    expect(await readFile(p, "utf8")).toBe("old");
    // Only the orphaned temp file may remain beside it; the target is never partial.
    const names = await readdir(dir);
    expect(names.filter((n) => !n.startsWith(".big.bin.tmp-") && n !== "child.mts")).toEqual([
      "big.bin",
    ]);
    // The kill really happened mid-write: the partial temp file is there.
    expect(names.some((n) => n.startsWith(".big.bin.tmp-"))).toBe(true);
  });

  it("writeJsonAtomic writes pretty JSON with a newline", async () => {
    const p = join(dir, "x.json");
    await writeJsonAtomic(p, { a: 1 });
    expect(await readFile(p, "utf8")).toBe('{\n  "a": 1\n}\n');
  });
});

describe("directories", () => {
  it("replaceDirAtomic installs a new dir and replaces an existing one", async () => {
    const final = join(dir, "ckpt");
    const t1 = tempSiblingPath(final);
    await mkdir(join(t1, "sub"), { recursive: true });
    await writeFile(join(t1, "sub", "w.bin"), "v1");
    await replaceDirAtomic(t1, final);
    expect(await readFile(join(final, "sub", "w.bin"), "utf8")).toBe("v1");
    const t2 = tempSiblingPath(final);
    await mkdir(t2);
    await writeFile(join(t2, "w.bin"), "v2");
    await replaceDirAtomic(t2, final);
    expect(await readdir(final)).toEqual(["w.bin"]);
    expect(await readFile(join(final, "w.bin"), "utf8")).toBe("v2");
    expect(await readdir(dir)).toEqual(["ckpt"]);
  });

  it("writeDirAtomic leaves the old dir untouched when the writer fails", async () => {
    const final = join(dir, "ckpt");
    await writeDirAtomic(final, async (tmp) => writeFile(join(tmp, "w"), "good"));
    await expect(
      writeDirAtomic(final, async (tmp) => {
        await writeFile(join(tmp, "w"), "half");
        throw new Error("crash");
      }),
    ).rejects.toThrow("crash");
    expect(await readFile(join(final, "w"), "utf8")).toBe("good");
    expect(await readdir(dir)).toEqual(["ckpt"]);
  });

  it("recoverAtomicDir restores a dir moved aside by a crash between renames", async () => {
    const final = join(dir, "ckpt");
    const backup = join(dir, ".ckpt.replaced-1-abc");
    await mkdir(backup);
    await writeFile(join(backup, "w"), "previous");
    expect(await recoverAtomicDir(final)).toBe(true);
    expect(await readFile(join(final, "w"), "utf8")).toBe("previous");
    expect(await recoverAtomicDir(final)).toBe(false);
  });

  it("recoverAtomicDirsIn restores moved-aside dirs and removes stale temps only", async () => {
    await mkdir(join(dir, ".a.replaced-12-0123456789ab"));
    await writeFile(join(dir, ".a.replaced-12-0123456789ab", "w"), "A");
    await mkdir(join(dir, "b"));
    await mkdir(join(dir, ".b.replaced-12-0123456789ab"));
    await mkdir(join(dir, ".c.tmp-1-aaaaaaaaaaaa"));
    await writeFile(join(dir, ".d.json.tmp-1-bbbbbbbbbbbb"), "partial");
    const old = new Date(Date.now() - 2 * 3_600_000);
    await utimes(join(dir, ".c.tmp-1-aaaaaaaaaaaa"), old, old);
    expect(isAtomicTempName(".c.tmp-1-aaaaaaaaaaaa")).toBe(true);
    expect(isAtomicTempName("c")).toBe(false);
    expect(await recoverAtomicDirsIn(dir)).toEqual(["a"]);
    expect(await readFile(join(dir, "a", "w"), "utf8")).toBe("A");
    // The fresh temp file may belong to a live writer: kept.
    expect((await readdir(dir)).sort()).toEqual([".d.json.tmp-1-bbbbbbbbbbbb", "a", "b"]);
    expect(await recoverAtomicDirsIn(join(dir, "missing"))).toEqual([]);
  });
});

describe("tinkerCacheDir", () => {
  it("honours TINKER_TS_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache", () => {
    expect(tinkerCacheDir({ TINKER_TS_CACHE_DIR: "/x", XDG_CACHE_HOME: "/y" })).toBe("/x");
    expect(tinkerCacheDir({ XDG_CACHE_HOME: "/y" })).toBe(join("/y", "tinker-ts"));
    expect(tinkerCacheDir({})).toBe(join(homedir(), ".cache", "tinker-ts"));
  });
});

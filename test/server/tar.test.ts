import { execFileSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tarHeader, tarSize, tarStream } from "../../src/local/server/tar.js";
import { tempDir, untar } from "./helpers.js";

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of it) parts.push(p);
  return new Uint8Array(Buffer.concat(parts));
}

describe("tar writer", () => {
  it("writes archives that the system tar extracts byte for byte", async () => {
    const t = await tempDir("server-tar");
    try {
      const src = join(t.dir, "src");
      await mkdir(src);
      const files = [
        { name: "adapter_config.json", bytes: Buffer.from('{"r": 8}\n') },
        { name: "adapter_model.safetensors", bytes: Buffer.alloc(1536, 7) }, // exactly 3 blocks
        { name: "empty.bin", bytes: Buffer.alloc(0) },
        { name: `${"d".repeat(120)}/${"f".repeat(90)}.bin`, bytes: Buffer.from("long name") },
      ];
      const entries = [];
      for (const [i, f] of files.entries()) {
        const path = join(src, `file-${i}`);
        await writeFile(path, f.bytes);
        entries.push({ name: f.name, path });
      }
      const archive = await collect(tarStream(entries));
      expect(archive.length).toBe(tarSize(files.map((f) => f.bytes.length)));
      expect(archive.length % 512).toBe(0);
      const parsed = untar(archive);
      for (const f of files) expect(Buffer.from(parsed.get(f.name)!)).toEqual(f.bytes);

      const tarPath = join(t.dir, "a.tar");
      await writeFile(tarPath, archive);
      const out = join(t.dir, "out");
      await mkdir(out);
      execFileSync("tar", ["-xf", tarPath, "-C", out]);
      for (const f of files) expect(await readFile(join(out, f.name))).toEqual(f.bytes);
    } finally {
      await t.cleanup();
    }
  });

  it("rejects names that do not fit a ustar header", () => {
    expect(() => tarHeader("x".repeat(101), 0, 0)).toThrow(/too long/);
  });
});

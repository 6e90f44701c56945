/**
 * Unpacking a checkpoint archive (POSIX ustar, regular files and directories) into a folder.
 * Entries that would land outside the folder (absolute paths, `..`) are refused.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, sep } from "node:path";

const BLOCK = 512;

function field(header: Uint8Array, at: number, len: number): string {
  const text = Buffer.from(header.subarray(at, at + len)).toString("utf8");
  const nul = text.indexOf("\0");
  return nul < 0 ? text : text.slice(0, nul);
}

/** Write the files of the tar archive `bytes` under `dir`; returns their archive names. */
export async function extractTar(bytes: Uint8Array, dir: string): Promise<string[]> {
  const names: string[] = [];
  let at = 0;
  while (at + BLOCK <= bytes.length) {
    const header = bytes.subarray(at, at + BLOCK);
    if (header.every((b) => b === 0)) break;
    const prefix = field(header, 345, 155);
    const name = prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100);
    const size = Number.parseInt(field(header, 124, 12).trim() || "0", 8);
    const type = String.fromCharCode(header[156] ?? 0);
    if (!Number.isFinite(size) || size < 0 || at + BLOCK + size > bytes.length) {
      throw new Error("the checkpoint archive is truncated or not a tar file; download it again");
    }
    const rel = normalize(name);
    if (isAbsolute(rel) || rel === ".." || rel.startsWith(`..${sep}`)) {
      throw new Error(
        `the checkpoint archive has an entry outside its folder ("${name}"); refusing it`,
      );
    }
    const target = join(dir, rel);
    if (type === "5") {
      await mkdir(target, { recursive: true });
    } else if (type === "0" || type === "\0") {
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, bytes.subarray(at + BLOCK, at + BLOCK + size));
      names.push(rel);
    }
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return names;
}

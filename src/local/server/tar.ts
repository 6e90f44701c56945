import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";

const BLOCK = 512;

/** One regular file to put in a tar archive. */
export interface TarEntry {
  /** Path inside the archive, `/`-separated, at most 255 bytes. */
  name: string;
  /** File on disk to copy. */
  path: string;
}

/**
 * Streams a POSIX ustar archive of `entries` (regular files only, mode 0644, mtime of the file).
 * Readable by `tar -x`, Python's `tarfile` and every common tool.
 */
export async function* tarStream(entries: readonly TarEntry[]): AsyncGenerator<Uint8Array> {
  for (const e of entries) {
    const st = await stat(e.path);
    yield tarHeader(e.name, st.size, Math.floor(st.mtimeMs / 1000));
    let written = 0;
    for await (const chunk of createReadStream(e.path)) {
      const buf = chunk as Buffer;
      written += buf.length;
      if (written > st.size) throw new Error(`${e.path} grew while it was being archived`);
      yield buf;
    }
    if (written !== st.size) throw new Error(`${e.path} changed size while it was being archived`);
    const pad = (BLOCK - (st.size % BLOCK)) % BLOCK;
    if (pad) yield new Uint8Array(pad);
  }
  yield new Uint8Array(BLOCK * 2);
}

/** Total archive size for files of these sizes (so a Content-Length can be sent). */
export function tarSize(sizes: readonly number[]): number {
  let total = BLOCK * 2;
  for (const s of sizes) total += BLOCK + Math.ceil(s / BLOCK) * BLOCK;
  return total;
}

/** A ustar header block for a regular file. */
export function tarHeader(name: string, size: number, mtimeSec: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const nameBytes = Buffer.from(name, "utf8");
  let prefix = Buffer.alloc(0);
  let base = nameBytes;
  if (nameBytes.length > 100) {
    const cut = name.lastIndexOf("/", 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) {
      throw new Error(`tar entry name too long: ${name}`);
    }
    prefix = Buffer.from(name.slice(0, cut), "utf8");
    base = Buffer.from(name.slice(cut + 1), "utf8");
  }
  h.set(base, 0);
  writeOctal(h, 100, 8, 0o644);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, mtimeSec);
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  h[156] = 0x30; // '0' regular file
  h.set(Buffer.from("ustar\0", "latin1"), 257);
  h.set(Buffer.from("00", "latin1"), 263);
  h.set(prefix, 345);
  let sum = 0;
  for (const b of h) sum += b;
  writeOctal(h, 148, 7, sum);
  h[155] = 0x20;
  return h;
}

function writeOctal(buf: Uint8Array, offset: number, width: number, value: number): void {
  const digits = value.toString(8);
  if (digits.length > width - 1)
    throw new Error(`value ${value} does not fit a ${width}-byte tar field`);
  const text = digits.padStart(width - 1, "0");
  buf.set(Buffer.from(text, "latin1"), offset);
  buf[offset + width - 1] = 0;
}

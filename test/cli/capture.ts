/** Run a CLI function in-process with stdout and stderr captured. */
import { vi } from "vitest";

export interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

export async function captureCli(run: () => Promise<number>): Promise<Captured> {
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await run(), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

import { afterAll, describe, expect, it, vi } from "vitest";
import { ensureLocalServer } from "../../src/local/server/embedded.js";
import { Raw, tempDir } from "./helpers.js";

describe("ensureLocalServer (embedded default backend)", () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterAll(async () => {
    await cleanup?.();
  });

  it("starts one server per process, reuses it, says so once, and stops after the last release", async () => {
    const tmp = await tempDir("server-embedded");
    cleanup = tmp.cleanup;
    let stderr = "";
    const spy = vi
      .spyOn(process.stderr, "write")
      .mockImplementation((chunk: string | Uint8Array) => {
        stderr += String(chunk);
        return true;
      });
    let a: Awaited<ReturnType<typeof ensureLocalServer>>;
    let b: Awaited<ReturnType<typeof ensureLocalServer>>;
    try {
      [a, b] = await Promise.all([
        ensureLocalServer({ dataDir: tmp.dir }),
        ensureLocalServer({ dataDir: tmp.dir }),
      ]);
    } finally {
      spy.mockRestore();
    }
    expect(b.url).toBe(a.url);
    expect(a.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(stderr.match(/local CPU engine/g)).toHaveLength(1);
    const api = new Raw(a.url);
    expect(await api.healthy()).toBe(true);
    const caps = await api.get("/api/v1/get_server_capabilities");
    expect(
      (caps.json.supported_models as Array<{ model_name: string }>).map((m) => m.model_name),
    ).toContain("tiny-bytes");

    await a.close();
    await a.close(); // idempotent: releases one reference only
    expect(await api.healthy()).toBe(true);
    await b.close();
    await expect(fetch(`${a.url}/api/v1/healthz`)).rejects.toThrow();
  });
});

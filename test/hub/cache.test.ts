import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  envFlagOn,
  expandHome,
  findCachedSnapshot,
  hfCacheRefPath,
  hfOfflineFromEnv,
} from "../../src/hub/cache.js";

describe("hub cache layout", () => {
  const commit = "0123456789abcdef0123456789abcdef01234567";
  const cache = mkdtempSync(join(tmpdir(), "hub-cache-"));
  const snapshot = join(cache, "models--acme--tiny", "snapshots", commit);
  mkdirSync(snapshot, { recursive: true });
  writeFileSync(join(snapshot, "config.json"), "{}");

  it("finds a snapshot by commit, and by branch only once refs/ records it", () => {
    expect(findCachedSnapshot("acme/tiny", commit, cache)).toBe(snapshot);
    expect(findCachedSnapshot("acme/tiny", "main", cache)).toBeUndefined();
    const ref = hfCacheRefPath(cache, "acme/tiny", "main");
    expect(ref).toBe(join(cache, "models--acme--tiny", "refs", "main"));
    mkdirSync(join(ref, ".."), { recursive: true });
    writeFileSync(ref, `${commit}\n`);
    expect(findCachedSnapshot("acme/tiny", "main", cache)).toBe(snapshot);
    expect(findCachedSnapshot("acme/other", "main", cache)).toBeUndefined();
  });

  it("with a required file, a snapshot without it does not count", () => {
    expect(findCachedSnapshot("acme/tiny", commit, cache, "config.json")).toBe(snapshot);
    expect(findCachedSnapshot("acme/tiny", commit, cache, "tokenizer.json")).toBeUndefined();
  });

  it("reads offline flags and home paths as the Python client does", () => {
    for (const v of ["1", "true", "YES", "on"]) expect(envFlagOn(v)).toBe(true);
    for (const v of [undefined, "", "0", "false", "off"]) expect(envFlagOn(v)).toBe(false);
    expect(hfOfflineFromEnv({ TRANSFORMERS_OFFLINE: "1" })).toBe(true);
    expect(hfOfflineFromEnv({ HF_HUB_OFFLINE: "0" })).toBe(false);
    expect(expandHome("~/models/x")).toBe(join(homedir(), "models", "x"));
    expect(expandHome("~")).toBe(homedir());
    expect(expandHome("./x")).toBe("./x");
  });
});

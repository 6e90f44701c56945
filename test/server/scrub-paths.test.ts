import { describe, expect, it } from "vitest";
import { scrubPaths } from "../../src/local/server/http-error.js";

describe("scrubPaths", () => {
  it("hides absolute file paths but keeps API routes and a lone slash", () => {
    expect(scrubPaths("cannot open /home/u/.cache/tinker-ts/server/runs/x.json: ENOENT")).toBe(
      "cannot open <server path>: ENOENT",
    );
    expect(scrubPaths('failed at "C:\\data\\runs\\x"')).toBe('failed at "<server path>"');
    expect(scrubPaths("POST /api/v1/forward_backward failed")).toBe(
      "POST /api/v1/forward_backward failed",
    );
    expect(scrubPaths('has 2 "/"-separated parts after tinker://, needs exactly 3')).toBe(
      'has 2 "/"-separated parts after tinker://, needs exactly 3',
    );
  });
});

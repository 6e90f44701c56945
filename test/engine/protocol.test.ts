import { describe, expect, it } from "vitest";
import { TinkerError, TinkerValidationError } from "../../src/client/errors.js";
import { fromWireError, toWireError } from "../../src/local/engine/core/protocol.js";
import { ModelFileError } from "../../src/local/engine/io/errors.js";
import { ModelNotAvailableError } from "../../src/local/engine/io/hf-hub.js";

const roundTrip = (err: unknown) => fromWireError(structuredClone(toWireError(err)));

describe("errors across the worker boundary", () => {
  it("validation errors of every subclass stay validation errors, with field and name", () => {
    const cases: Array<[TinkerValidationError, string | undefined]> = [
      [new TinkerValidationError("bad rank", "rank"), "rank"],
      [new ModelFileError("/m/config.json", "not valid JSON", "hidden_size"), "hidden_size"],
      [new ModelNotAvailableError("acme/tiny", "offline and not cached"), "base_model"],
    ];
    for (const [err, field] of cases) {
      const back = roundTrip(err);
      expect(back).toBeInstanceOf(TinkerValidationError);
      expect(back).toMatchObject({ name: err.name, message: err.message, field });
    }
  });

  it("other named errors come back as TinkerError, plain ones as Error", () => {
    const boom = new TinkerError("boom");
    boom.name = "KernelError";
    const back = roundTrip(boom);
    expect(back).toBeInstanceOf(TinkerError);
    expect(back).not.toBeInstanceOf(TinkerValidationError);
    expect(back).toMatchObject({ name: "KernelError", message: "boom" });
    const plain = roundTrip(new Error("plain"));
    expect(plain).not.toBeInstanceOf(TinkerError);
    expect(plain.message).toBe("plain");
    expect(roundTrip("a string").message).toBe("a string");
  });
});

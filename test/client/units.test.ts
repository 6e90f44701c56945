import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Semaphore, SoftByteBudget } from "../../src/client/core/budget.js";
import { APIConnectionError, APIUserAbortError } from "../../src/client/errors.js";
import { ServiceClient } from "../../src/client/service-client.js";
import { resolveTokenizerId } from "../../src/client/tokenizer-hook.js";
import { encodedText, ModelInput } from "../../src/client/types/model-input.js";
import { MockTinker } from "./helpers/mock-tinker.js";

describe("SoftByteBudget", () => {
  it("grants while non-negative, then blocks until releases bring it back", async () => {
    const b = new SoftByteBudget(100);
    const r1 = await b.acquire(150); // granted: budget was >= 0
    expect(b.remaining).toBe(-50);
    let granted = false;
    const p = b.acquire(10).then((r) => {
      granted = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(granted).toBe(false);
    r1();
    r1(); // idempotent
    const r2 = await p;
    expect(granted).toBe(true);
    expect(b.remaining).toBe(90);
    r2();
    expect(b.remaining).toBe(100);
  });

  it("an abort removes a waiter", async () => {
    const b = new SoftByteBudget(0);
    await b.acquire(1);
    const ac = new AbortController();
    const p = b.acquire(1, ac.signal);
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(APIUserAbortError);
  });
});

describe("Semaphore", () => {
  it("bounds concurrency, wakes FIFO, and follows limit changes", async () => {
    const s = new Semaphore(2);
    const order: number[] = [];
    const r1 = await s.acquire();
    const r2 = await s.acquire();
    const w3 = s.acquire().then((r) => {
      order.push(3);
      return r;
    });
    const w4 = s.acquire().then((r) => {
      order.push(4);
      return r;
    });
    expect(s.inFlight).toBe(2);
    r1();
    const r3 = await w3;
    expect(order).toEqual([3]);
    s.limit = 3;
    const r4 = await w4;
    expect(order).toEqual([3, 4]);
    expect(s.inFlight).toBe(3);
    for (const r of [r2, r3, r4]) r();
    expect(s.inFlight).toBe(0);
  });
});

describe("tokenizer id resolution", () => {
  it("follows the reference rules", () => {
    expect(resolveTokenizerId("Qwen/Qwen3-8B")).toBe("Qwen/Qwen3-8B");
    expect(resolveTokenizerId("Qwen/Qwen3-8B:peft")).toBe("Qwen/Qwen3-8B");
    expect(resolveTokenizerId("x", "org/tok:rev")).toBe("org/tok");
    expect(resolveTokenizerId("meta-llama/Llama-3.1-8B")).toBe(
      "thinkingmachineslabinc/meta-llama-3-instruct-tokenizer",
    );
    expect(resolveTokenizerId("org/model/variant")).toBe("org/model");
  });
});

describe("sampling stuck detection", () => {
  let mock: MockTinker;
  beforeEach(async () => {
    mock = await MockTinker.start();
  });
  afterEach(async () => {
    await mock.close();
  });

  it("fails in-flight samples after no progress for sampleStuckAfterMs", async () => {
    const service = new ServiceClient({
      apiKey: "tml-k",
      baseUrl: mock.url,
      logLevel: "off",
      timings: { sampleStuckAfterMs: 150, pollTimeoutMs: 5000 },
    });
    const sc = await service.createSamplingClient({ baseModel: "Qwen/Qwen3-8B" });
    mock.server.on("POST /api/v1/retrieve_future", () => ({ hang: true }));
    const err = await sc.sample([1], 1).catch((e) => e);
    expect(err).toBeInstanceOf(APIConnectionError);
    expect((err as Error).message).toMatch(
      /No progress made in .*s\. Requests appear to be stuck\./,
    );
    await sc.close();
    await service.close();
  });
});

describe("ModelInput.toInts", () => {
  it("joins text chunks and names a non-text chunk, even one of unknown length", () => {
    const text = new ModelInput([encodedText([1, 2]), encodedText([3])]);
    expect(text.toInts()).toEqual([1, 2, 3]);
    const image = new ModelInput([
      encodedText([1]),
      { type: "image", data: new Uint8Array(4), format: "png" },
    ]);
    expect(() => image.toInts()).toThrow(/needs text-only input, found a "image" chunk/);
  });
});

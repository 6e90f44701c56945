import { describe, expect, it } from "vitest";
import { type FutureResult, FutureStore } from "../../src/local/server/futures.js";
import { HttpError } from "../../src/local/server/http-error.js";
import { ModelSequencer } from "../../src/local/server/sequencer.js";

const ok = (v: string): FutureResult => ({ kind: "json", value: { v } });

async function settled(futures: FutureStore, id: string) {
  const s = await futures.wait(id, 5000);
  return s;
}

function setup(gapTimeoutMs = 2000) {
  const futures = new FutureStore();
  const seq = new ModelSequencer(futures, "model m", { firstSeqId: 1, gapTimeoutMs });
  const order: number[] = [];
  const job =
    (n: number, ms = 0) =>
    async () => {
      if (ms) await new Promise((r) => setTimeout(r, ms));
      order.push(n);
      return ok(String(n));
    };
  return { futures, seq, order, job };
}

describe("ModelSequencer", () => {
  it("runs requests in seq_id order whatever order they arrive in", async () => {
    const { futures, seq, order, job } = setup();
    const ids = [3, 1, 4, 2].map((n) => seq.submit(n, "fb", job(n, n === 1 ? 20 : 0)));
    for (const id of ids) expect((await settled(futures, id))?.status).toBe("done");
    expect(order).toEqual([1, 2, 3, 4]);
    expect(seq.expectedSeqId).toBe(5);
  });

  it("runs one request at a time", async () => {
    const { futures, seq } = setup();
    let active = 0;
    let maxActive = 0;
    const ids = [1, 2, 3].map((n) =>
      seq.submit(n, "fb", async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 10));
        active--;
        return ok("x");
      }),
    );
    for (const id of ids) await settled(futures, id);
    expect(maxActive).toBe(1);
  });

  it("returns the original request id for a duplicate seq_id and runs it once", async () => {
    const { futures, seq, order, job } = setup();
    const a = seq.submit(1, "fb", job(1, 10));
    const b = seq.submit(1, "fb", job(99));
    expect(b).toBe(a);
    await settled(futures, a);
    const c = seq.submit(1, "fb", job(98)); // after it ran
    expect(c).toBe(a);
    expect(order).toEqual([1]);
  });

  it("rejects a seq_id reused by a different kind of request with 400", () => {
    const { seq, job } = setup();
    seq.submit(1, "fb", job(1));
    expect(() => seq.submit(1, "optim_step", job(1))).toThrow(HttpError);
  });

  it("rejects seq_ids behind the sequence and far ahead of it with 400", async () => {
    const { futures, seq, job } = setup();
    const id = seq.submit(1, "fb", job(1));
    await settled(futures, id);
    try {
      seq.submit(0, "fb", job(0));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(HttpError);
      expect((e as HttpError).status).toBe(400);
      expect((e as HttpError).message).toMatch(/out of order.*next expected seq_id is 2/);
    }
    expect(() => seq.submit(10_000_000, "fb", job(0))).toThrow(/too far ahead/);
    expect(() => seq.submit(-1, "fb", job(0))).toThrow(/non-negative/);
  });

  it("fails requests stuck behind a gap after the timeout, then carries on", async () => {
    const { futures, seq, order, job } = setup(100);
    const id3 = seq.submit(3, "fb", job(3));
    const id4 = seq.submit(4, "fb", job(4));
    const s3 = await settled(futures, id3);
    expect(s3?.status).toBe("failed");
    if (s3?.status === "failed") {
      expect(s3.failure.category).toBe("user");
      expect(s3.failure.message).toMatch(/seq_id 1 .*never arrived.*continue with seq_id 5/);
    }
    expect((await settled(futures, id4))?.status).toBe("failed");
    const id5 = seq.submit(5, "fb", job(5));
    expect((await settled(futures, id5))?.status).toBe("done");
    expect(order).toEqual([5]);
    expect(() => seq.submit(1, "fb", job(1))).toThrow(
      /arrived too late: seq_ids 1\.\.4 were given up/,
    );
  });

  it("a failing request still consumes its seq_id", async () => {
    const { futures, seq, order, job } = setup();
    const a = seq.submit(1, "fb", async () => {
      throw new Error("boom");
    });
    const b = seq.submit(2, "fb", job(2));
    expect((await settled(futures, a))?.status).toBe("failed");
    expect((await settled(futures, b))?.status).toBe("done");
    expect(order).toEqual([2]);
  });

  it("runs requests without a seq_id when no sequenced request is ready", async () => {
    const { futures, seq, order, job } = setup();
    const a = seq.submit(1, "fb", job(1, 10));
    const u = seq.submit(undefined, "unload", job(100));
    await settled(futures, a);
    await settled(futures, u);
    expect(order).toEqual([1, 100]);
  });

  it("close() fails waiting requests and refuses new ones", async () => {
    const { futures, seq, job } = setup();
    const id = seq.submit(2, "fb", job(2));
    seq.close("model unloaded");
    const s = await settled(futures, id);
    expect(s?.status === "failed" && s.failure.message).toBe("model unloaded");
    expect(() => seq.submit(1, "fb", job(1))).toThrow(/model unloaded/);
  });
});

describe("FutureStore", () => {
  it("long-polls until the result is ready", async () => {
    const futures = new FutureStore();
    let release!: () => void;
    const id = futures.start(
      () =>
        new Promise<FutureResult>((r) => {
          release = () => r(ok("done"));
        }),
    );
    const t0 = Date.now();
    setTimeout(() => release(), 30);
    const s = await futures.wait(id, 5000);
    expect(s?.status).toBe("done");
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("answers pending after the hold expires, and unknown ids with undefined", async () => {
    const futures = new FutureStore();
    const id = futures.start(() => new Promise<FutureResult>(() => undefined));
    expect((await futures.wait(id, 20))?.status).toBe("pending");
    expect(await futures.wait("req-nope", 20)).toBeUndefined();
  });

  it("keeps results until retrieved plus a grace period", async () => {
    let now = 1000;
    const futures = new FutureStore({
      retrievedGraceMs: 100,
      unretrievedTtlMs: 10_000,
      now: () => now,
    });
    const id = futures.start(async () => ok("x"));
    await futures.wait(id, 100);
    now += 5000;
    futures.sweep();
    expect(futures.get(id)?.status).toBe("done"); // not retrieved yet
    futures.markRetrieved(id);
    now += 50;
    futures.sweep();
    expect(futures.get(id)).toBeDefined(); // within grace
    now += 100;
    futures.sweep();
    expect(futures.get(id)).toBeUndefined();
  });

  it("expires results nobody retrieves after the TTL", async () => {
    let now = 0;
    const futures = new FutureStore({ unretrievedTtlMs: 1000, now: () => now });
    const id = futures.start(async () => ok("x"));
    await futures.wait(id, 100);
    now = 1001;
    futures.sweep();
    expect(futures.get(id)).toBeUndefined();
  });

  it("a consumed seq_id lets the requests behind it run at once, without a gap timeout", async () => {
    const { futures, seq, order, job } = setup(60_000);
    const id3 = seq.submit(3, "fb", job(3));
    const id2 = seq.submit(2, "fb", job(2));
    seq.consume(1, "optim_step", "adam_params.eps must be positive");
    expect((await settled(futures, id2))?.status).toBe("done");
    expect((await settled(futures, id3))?.status).toBe("done");
    expect(order).toEqual([2, 3]);
    // consuming a seq_id already used or behind the sequence changes nothing
    seq.consume(2, "fb", "x");
    seq.consume(0, "fb", "x");
    expect(seq.expectedSeqId).toBe(4);
    expect(() => seq.submit(1, "optim_step", job(1))).not.toThrow();
  });

  it("tells a request behind the sequence the last seq_id that really ran", async () => {
    const { futures, seq, job } = setup();
    await settled(futures, seq.submit(1, "fb", job(1)));
    seq.consume(2, "fb", "bad");
    await settled(futures, seq.submit(3, "fb", job(3)));
    expect(() => seq.submit(0, "fb", job(0))).toThrow(
      /last executed seq_id 3; the next expected seq_id is 4/,
    );
  });
});

/**
 * SupervisedRecipe against the real local server (tiny-bytes): learning on a GSM8K slice, the run
 * directory it writes, pipelining as the server sees it, configuration errors before any training
 * request, and a clean stop on abort.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { ServiceClient } from "../../src/client/service-client.js";
import type { SamplingClientEvaluator } from "../../src/recipes/evaluators.js";
import { readJsonLines } from "../../src/recipes/run-dir.js";
import {
  conversationsJsonl,
  hubConversations,
  mappedRows,
} from "../../src/recipes/supervised/dataset.js";
import { SupervisedRecipe } from "../../src/recipes/supervised/recipe.js";
import { startFakeHub } from "../datasets/fake-hub.js";
import { gsm8kSft, shortGsm8kRows, startRecipeServer } from "./fixtures.js";
import { startRequestLog } from "./request-log.js";

type Server = Awaited<ReturnType<typeof startRecipeServer>>;

describe("SupervisedRecipe on the local engine", () => {
  let s: Server;
  beforeAll(async () => {
    s = await startRecipeServer("recipes-sft");
  });
  afterAll(async () => {
    await s?.close();
  });

  it("halves the train NLL on a GSM8K slice within a few dozen steps, and test/nll falls", async () => {
    const logDir = join(s.dir, "sft-learns");
    const recipe = gsm8kSft(
      { logDir, service: s.service },
      { rows: 48, testSize: 8, batchSize: 4, epochs: 5, evalEvery: 10 },
    );
    const steps: number[] = [];
    recipe.on("step", (e) => steps.push(e.step));
    const result = await recipe.run();
    expect(result).toMatchObject({ stepsDone: 50, totalSteps: 50, aborted: false, logDir });
    expect(result.samplerPath).toMatch(/^tinker:\/\/.+\/sampler_weights\/final$/);
    expect(result.statePath).toMatch(/^tinker:\/\/.+\/weights\/final$/);
    expect(steps).toEqual(Array.from({ length: 50 }, (_, i) => i));

    const { rows } = await readJsonLines<Record<string, number>>(join(logDir, "metrics.jsonl"));
    const nll = rows.map((r) => r.train_mean_nll!);
    const first = nll[0]!;
    const last = nll.slice(-5).reduce((a, b) => a + b, 0) / 5;
    const testNll = rows.filter((r) => r["test/nll"] !== undefined).map((r) => r["test/nll"]!);
    console.log(
      `train NLL ${first.toFixed(3)} -> ${last.toFixed(3)} (last 5 mean); test/nll ${testNll.map((v) => v.toFixed(3)).join(" -> ")}`,
    );
    expect(last).toBeLessThan(first / 2);
    expect(testNll).toHaveLength(5);
    expect(testNll.at(-1)!).toBeLessThan(testNll[0]! * 0.7);
    for (const r of rows) {
      expect(r).toHaveProperty("learning_rate", 4e-3);
      expect(r.num_sequences).toBe(4);
      expect(r.num_tokens).toBeGreaterThan(0);
      expect(r.train_mean_bpb).toBeGreaterThan(0);
      expect(r["time/total"]).toBeGreaterThan(0);
    }
    const config = JSON.parse(await readFile(join(logDir, "config.json"), "utf8"));
    expect(config).toMatchObject({
      recipe: "supervised",
      model: "tiny-bytes",
      renderer: "qwen3_instruct",
    });
    const ckpts = (await readJsonLines<Record<string, unknown>>(join(logDir, "checkpoints.jsonl")))
      .rows;
    expect(ckpts.at(-1)).toMatchObject({
      name: "final",
      final: true,
      step: 50,
      epoch: 5,
      batch: 0,
    });
  }, 300_000);

  it("warm-starts from a checkpoint (fresh optimizer) and runs sampling-client evaluators on the pre-step weights", async () => {
    const first = await gsm8kSft(
      { logDir: join(s.dir, "warm-source"), service: s.service },
      { rows: 16, testSize: 0, batchSize: 4, epochs: 3, evalEvery: 0 },
    ).run();
    const seen: number[] = [];
    const sampled: SamplingClientEvaluator = {
      kind: "sampling",
      async evaluate(sampler) {
        const res = await sampler.sample([259, 117], 1, { maxTokens: 4, seed: 1 });
        seen.push(res.sequences[0]!.tokens.length);
        return { "sampled/tokens": res.sequences[0]!.tokens.length };
      },
    };
    const logDir = join(s.dir, "warm");
    await gsm8kSft(
      { logDir, service: s.service, loadCheckpointPath: first.statePath!, evaluators: [sampled] },
      { rows: 16, testSize: 0, batchSize: 4, epochs: 1, evalEvery: 2 },
    ).run();
    const source = (
      await readJsonLines<Record<string, number>>(join(s.dir, "warm-source", "metrics.jsonl"))
    ).rows;
    const { rows } = await readJsonLines<Record<string, number>>(join(logDir, "metrics.jsonl"));
    // The warm run starts where the source run ended, not from the random adapter.
    expect(rows[0]!.train_mean_nll!).toBeLessThan(source[0]!.train_mean_nll! * 0.8);
    expect(rows.filter((r) => r["sampled/tokens"] !== undefined).map((r) => r.step)).toEqual([
      0, 2,
    ]);
    expect(seen).toHaveLength(2);
  }, 180_000);

  it("trains on a Hugging Face chat dataset (a loopback hub) with its test split as the held-out set", async () => {
    const line = (q: string, a: string) =>
      `${JSON.stringify({
        messages: [
          { role: "user", content: q },
          { role: "assistant", content: a },
        ],
      })}\n`;
    const rows = shortGsm8kRows(10);
    const hub = await startFakeHub({
      "acme/chat": {
        files: {
          "data/train.jsonl": Buffer.from(
            rows
              .slice(0, 8)
              .map((r) => line(r.question, r.answer))
              .join(""),
          ),
          "data/test.jsonl": Buffer.from(
            rows
              .slice(8)
              .map((r) => line(r.question, r.answer))
              .join(""),
          ),
        },
      },
    });
    try {
      const logDir = join(s.dir, "hub");
      const recipe = new SupervisedRecipe({
        model: "tiny-bytes",
        logDir,
        service: s.service,
        progress: false,
        learningRate: 4e-3,
        evalEvery: 1,
        dataset: hubConversations("acme/chat", "train", {
          batchSize: 4,
          testSplit: "test",
          hub: { hubUrl: hub.url, datasetsServerUrl: hub.url, cacheDir: join(s.dir, "hub-cache") },
        }),
      });
      const result = await recipe.run();
      expect(result.stepsDone).toBe(2);
      const { rows: metrics } = await readJsonLines<Record<string, number>>(
        join(logDir, "metrics.jsonl"),
      );
      expect(metrics.map((r) => r["test/nll"]! > 0)).toEqual([true, true]);
      expect(hub.log.some((l) => l.includes("data/test.jsonl"))).toBe(true);
    } finally {
      await hub.close();
    }
  }, 120_000);

  it("pipelines: with submitAhead 1 step n+1 is submitted before step n's result is seen, with 0 after", async () => {
    const order = async (submitAhead: number) => {
      const log = await startRequestLog(s.server.url, 40);
      const service = new ServiceClient({
        baseUrl: log.url,
        apiKey: "tml-local",
        logLevel: "error",
        env: {},
      });
      try {
        await gsm8kSft(
          { logDir: join(s.dir, `pipeline-${submitAhead}`), service },
          { rows: 12, testSize: 0, batchSize: 2, epochs: 1, evalEvery: 0, submitAhead },
        ).run();
      } finally {
        await service.close();
        await log.close();
      }
      const at = (kind: string, path: string, id?: string) =>
        log.events.findIndex(
          (e) =>
            e.kind === kind && e.path.endsWith(path) && (id === undefined || e.requestId === id),
        );
      const fbs = log.events.filter(
        (e) => e.kind === "request" && e.path.endsWith("/forward_backward"),
      );
      const opts = log.events.filter((e) => e.kind === "request" && e.path.endsWith("/optim_step"));
      expect(fbs).toHaveLength(6);
      return fbs.slice(1).map((next, n) => ({
        nextSubmitted: log.events.indexOf(next),
        prevFbResult: at("result", "/retrieve_future", fbs[n]!.requestId),
        prevOptResult: at("result", "/retrieve_future", opts[n]!.requestId),
      }));
    };
    for (const o of await order(1)) {
      expect(o.prevFbResult).toBeGreaterThan(-1);
      expect(o.nextSubmitted).toBeLessThan(o.prevFbResult);
    }
    for (const o of await order(0)) {
      expect(o.prevOptResult).toBeGreaterThan(-1);
      expect(o.nextSubmitted).toBeGreaterThan(o.prevOptResult);
    }
  }, 120_000);

  it("stops cleanly on abort: in-flight steps finish, a resumable checkpoint is written, the run says so", async () => {
    const logDir = join(s.dir, "sft-abort");
    const controller = new AbortController();
    const recipe = gsm8kSft(
      { logDir, service: s.service, signal: controller.signal },
      { rows: 40, testSize: 0, batchSize: 2, epochs: 1, evalEvery: 0 },
    );
    recipe.on("step", (e) => {
      if (e.step === 2) controller.abort();
    });
    const result = await recipe.run();
    expect(result.aborted).toBe(true);
    expect(result.stepsDone).toBeGreaterThanOrEqual(3);
    expect(result.stepsDone).toBeLessThan(20);
    const { rows } = await readJsonLines<Record<string, number>>(join(logDir, "metrics.jsonl"));
    expect(rows).toHaveLength(result.stepsDone);
    const ckpts = (await readJsonLines<Record<string, unknown>>(join(logDir, "checkpoints.jsonl")))
      .rows;
    expect(ckpts.at(-1)).toMatchObject({ final: false, step: result.stepsDone });
    expect(ckpts.at(-1)!.state_path).toBe(result.statePath);
  }, 120_000);
});

describe("SupervisedRecipe configuration errors", () => {
  let s: Server;
  let log: Awaited<ReturnType<typeof startRequestLog>>;
  let service: ServiceClient;
  let dir: string;
  beforeAll(async () => {
    s = await startRecipeServer("recipes-sft-config");
    log = await startRequestLog(s.server.url);
    service = new ServiceClient({
      baseUrl: log.url,
      apiKey: "tml-local",
      logLevel: "error",
      env: {},
    });
    dir = await mkdtemp(join(tmpdir(), "tinker-ts-sft-config-"));
  });
  afterAll(async () => {
    await service?.close();
    await log?.close();
    await s?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const rows = shortGsm8kRows(8);
  const base = () => ({
    model: "tiny-bytes",
    renderer: "qwen3_instruct",
    logDir: join(dir, "run"),
    service,
    progress: false,
    dataset: mappedRows(
      "gsm8k",
      rows,
      (r) => [
        { role: "user" as const, content: r.question },
        { role: "assistant" as const, content: r.answer },
      ],
      { batchSize: 4 },
    ),
  });

  async function expectConfigError(
    make: () => SupervisedRecipe | Promise<unknown>,
    field: string,
    message: RegExp,
  ) {
    const before = log.events.length;
    let error: unknown;
    try {
      const r = make();
      if (r instanceof SupervisedRecipe) await r.run();
      else await r;
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TinkerValidationError);
    expect((error as TinkerValidationError).field).toBe(field);
    expect((error as Error).message).toMatch(message);
    const training = log.events
      .slice(before)
      .filter((e) => !e.path.endsWith("/get_server_capabilities") && !e.path.endsWith("/healthz"))
      .filter(
        (e) => !/\/(create_session|client\/config|dynamic_config|session_heartbeat)/.test(e.path),
      );
    expect(training.map((e) => e.path)).toEqual([]);
  }

  it.each([
    [{ learningRate: 0 }, "learningRate", /learningRate must be a finite number > 0/],
    [{ learningRate: Number.NaN }, "learningRate", /finite number > 0, got NaN/],
    [{ renderer: "llama3" }, "renderer", /does not fit model "tiny-bytes"; use one of/],
    [{ epochs: 0 }, "epochs", /epochs must be an integer >= 1/],
    [{ submitAhead: -1 }, "submitAhead", /submitAhead/],
    [{ lrSchedule: "exp" as "linear" }, "lrSchedule", /linear, cosine, constant/],
    [{ ifExists: "ask" as "fail" }, "ifExists", /resume, overwrite, fail/],
  ])("refuses %o in the constructor", async (override, field, message) => {
    await expectConfigError(() => new SupervisedRecipe({ ...base(), ...override }), field, message);
  });

  it("refuses an unknown model, naming the served ones", async () => {
    await expectConfigError(
      () => new SupervisedRecipe({ ...base(), model: "acme/unknown-1B", renderer: "role_colon" }),
      "model",
      /not served by this server; use one of .*tiny-bytes/,
    );
  });

  it("refuses a batch size larger than the dataset", async () => {
    const ds = mappedRows("gsm8k", rows, (r) => [{ role: "user" as const, content: r.question }], {
      batchSize: 16,
    });
    await expectConfigError(
      () => new SupervisedRecipe({ ...base(), dataset: ds }),
      "batchSize",
      /batchSize is larger than its rows/,
    );
  });

  it("refuses a log dir holding another run unless told to resume or overwrite", async () => {
    const logDir = join(dir, "held");
    await rm(logDir, { recursive: true, force: true });
    await mkdir(logDir, { recursive: true });
    await writeFile(
      join(logDir, "config.json"),
      JSON.stringify({ recipe: "supervised", model: "other" }),
    );
    await expectConfigError(
      () => new SupervisedRecipe({ ...base(), logDir }),
      "ifExists",
      /ifExists: "resume".*ifExists: "overwrite"/,
    );
    await expectConfigError(
      () => new SupervisedRecipe({ ...base(), logDir, ifExists: "resume" }),
      "logDir",
      /different config \(first difference: .*\)/,
    );
  });

  it("reads a conversations JSONL file and names a malformed row", async () => {
    const path = join(dir, "bad.jsonl");
    await writeFile(
      path,
      `${JSON.stringify({ messages: [{ role: "user", content: "hi" }] })}\n{"nope": 1}\n`,
    );
    let error: unknown;
    try {
      await new SupervisedRecipe({
        ...base(),
        logDir: join(dir, "bad"),
        dataset: conversationsJsonl(path, { batchSize: 1 }),
      }).run();
    } catch (err) {
      error = err;
    }
    expect(String(error)).toMatch(/DatasetFormatError: .*bad\.jsonl:2: expected \{"messages"/);
  });
});

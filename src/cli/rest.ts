/**
 * `tinker-ts models`, `runs list` and `checkpoints list|download|delete|publish`: the REST
 * client (src/client/rest-client.ts) on the command line, as tables or --json.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { RestClient } from "../client/rest-client.js";
import { ServiceClient } from "../client/service-client.js";
import { parseTinkerPath } from "../client/wire/paths.js";
import { writeDirAtomic } from "../fs/atomic.js";
import { EXIT, intFlag, parseFlags, runCommand, UsageError } from "./args.js";
import type { Subcommand } from "./subcommand.js";
import { extractTar } from "./tar-extract.js";

const ENVIRONMENT = `Environment:
  TINKER_API_KEY        Talk to Tinker's cloud service with this key
  TINKER_BASE_URL       A Tinker-compatible server (e.g. tinker-ts serve); without it and without
                        TINKER_API_KEY the embedded local engine of this process answers (its data
                        under TINKER_TS_CACHE_DIR, default ~/.cache/tinker-ts)`;

export const MODELS_HELP = `Usage: tinker-ts models [--json]

List the models the server can train and sample, with their context lengths.

Options:
  --json                Print JSON instead of a table
  -h, --help            Show this help

${ENVIRONMENT}

Exit codes: 0 listed, 1 failure (server unreachable, bad credentials), 2 usage error.`;

export const RUNS_HELP = `Usage: tinker-ts runs list [--limit <n>] [--offset <n>] [--json]

List your training runs, newest first.

Options:
  --limit <n>           Runs per page (default 20)
  --offset <n>          Skip this many runs (default 0)
  --json                Print JSON instead of a table
  -h, --help            Show this help

${ENVIRONMENT}

Exit codes: 0 listed, 1 failure, 2 usage error.`;

export const CHECKPOINTS_HELP = `Usage: tinker-ts checkpoints <action> ...

Actions:
  list [<run-id>] [--limit <n>] [--offset <n>] [--json]
                        The checkpoints of one training run, or of all your runs
  download <tinker-path> [--out <dir>] [--force]
                        Download a checkpoint and unpack it into <dir> (default ./<run>_<kind>_<name>);
                        the folder appears only when complete; --force replaces an existing one
  delete <tinker-path>...
                        Delete checkpoints (tinker://<run>/weights/<name> or .../sampler_weights/<name>)
  publish <tinker-path> [--unpublish]
                        Make a checkpoint public (readable by other accounts), or private again

Options:
  --json                Print JSON instead of a table (list)
  -h, --help            Show this help

${ENVIRONMENT}

Exit codes: 0 done, 1 failure (no such run or checkpoint, server error), 2 usage error.`;

function table(rows: readonly (readonly string[])[], head: readonly string[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

/** Run `body` with a REST client, closing the service after. */
async function withRest<T>(
  body: (rest: RestClient, service: ServiceClient) => Promise<T>,
): Promise<T> {
  const service = new ServiceClient();
  try {
    return await body(service.createRestClient(), service);
  } finally {
    await service.close();
  }
}

function checkPath(path: string): string {
  try {
    parseTinkerPath(path);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return path;
}

const LIST_FLAGS = {
  limit: { type: "string" },
  offset: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export const modelsCommand: Subcommand = {
  run(argv) {
    return runCommand("models", async () => {
      const { values } = parseFlags(
        argv,
        { json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
        {
          min: 0,
          max: 0,
        },
      );
      if (values.help) {
        process.stdout.write(`${MODELS_HELP}\n`);
        return EXIT.ok;
      }
      const caps = await withRest((_rest, service) => service.getServerCapabilities());
      if (values.json) {
        process.stdout.write(`${JSON.stringify(caps.supportedModels, null, 2)}\n`);
      } else {
        const rows = caps.supportedModels.map((m) => [
          m.modelName ?? "?",
          String(m.maxContextLength ?? ""),
        ]);
        process.stdout.write(`${table(rows, ["model", "context"])}\n`);
      }
      return EXIT.ok;
    });
  },
};

export const runsCommand: Subcommand = {
  run(argv) {
    return runCommand("runs", async () => {
      const [action, ...rest] = argv;
      if (action === undefined || action === "-h" || action === "--help") {
        (action === undefined ? process.stderr : process.stdout).write(`${RUNS_HELP}\n`);
        return action === undefined ? EXIT.usage : EXIT.ok;
      }
      if (action !== "list") throw new UsageError(`unknown action "${action}"; the action is list`);
      const { values } = parseFlags(rest, LIST_FLAGS, { min: 0, max: 0 });
      if (values.help) {
        process.stdout.write(`${RUNS_HELP}\n`);
        return EXIT.ok;
      }
      const limit = intFlag("limit", values.limit, 20, { min: 1 });
      const offset = intFlag("offset", values.offset, 0);
      const runs = await withRest((r) => r.listTrainingRuns({ limit, offset }));
      if (values.json) {
        process.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
        return EXIT.ok;
      }
      const rows = runs.trainingRuns.map((t) => [
        t.trainingRunId,
        t.baseModel,
        t.isLora ? `lora r${t.loraRank ?? "?"}` : "full",
        t.lastRequestTime,
        t.lastCheckpoint?.tinkerPath ?? "",
      ]);
      process.stdout.write(
        `${table(rows, ["run", "base model", "kind", "last request", "last checkpoint"])}\n`,
      );
      const shown = offset + runs.trainingRuns.length;
      process.stdout.write(`${shown} of ${runs.cursor.totalCount} runs\n`);
      return EXIT.ok;
    });
  },
};

async function listCheckpoints(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, LIST_FLAGS, { min: 0, max: 1 });
  const limit = intFlag("limit", values.limit, 100, { min: 1 });
  const offset = intFlag("offset", values.offset, 0);
  const runId = positionals[0];
  const list = await withRest((r) =>
    runId === undefined ? r.listUserCheckpoints({ limit, offset }) : r.listCheckpoints(runId),
  );
  if (values.json) {
    process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    return EXIT.ok;
  }
  const rows = list.checkpoints.map((c) => [
    c.tinkerPath,
    c.checkpointType,
    c.sizeBytes === undefined ? "" : `${(c.sizeBytes / 1e6).toFixed(1)} MB`,
    c.public ? "yes" : "no",
    c.time,
  ]);
  process.stdout.write(`${table(rows, ["path", "type", "size", "public", "time"])}\n`);
  return EXIT.ok;
}

async function downloadCheckpoint(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    { out: { type: "string" }, force: { type: "boolean" } },
    { min: 1, max: 1, name: "<tinker-path>" },
  );
  const path = checkPath(positionals[0]!);
  const p = parseTinkerPath(path);
  const kind = p.checkpointType === "training" ? "weights" : "sampler_weights";
  const out = resolve(
    values.out ?? `${p.trainingRunId}_${kind}_${p.checkpointId.split("/").pop()}`,
  );
  if (existsSync(out) && !values.force) {
    throw new UsageError(
      `${out} already exists; pass --force to replace it or --out another folder`,
    );
  }
  const { url } = await withRest((r) => r.getCheckpointArchiveUrlFromTinkerPath(path));
  const res = await fetch(url);
  if (!res.ok)
    throw new Error(
      `downloading the archive failed with HTTP ${res.status}; try again (links expire)`,
    );
  const bytes = new Uint8Array(await res.arrayBuffer());
  const files = await writeDirAtomic(out, (tmp) => extractTar(bytes, tmp));
  process.stdout.write(`${out} (${files.length} files, ${(bytes.length / 1e6).toFixed(1)} MB)\n`);
  return EXIT.ok;
}

async function deleteCheckpoints(argv: readonly string[]): Promise<number> {
  const { positionals } = parseFlags(argv, {}, { min: 1, max: 1000, name: "<tinker-path>" });
  const paths = positionals.map(checkPath);
  await withRest(async (r) => {
    for (const path of paths) {
      await r.deleteCheckpointFromTinkerPath(path);
      process.stdout.write(`deleted ${path}\n`);
    }
  });
  return EXIT.ok;
}

async function publishCheckpoint(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    { unpublish: { type: "boolean" } },
    { min: 1, max: 1, name: "<tinker-path>" },
  );
  const path = checkPath(positionals[0]!);
  const runId = parseTinkerPath(path).trainingRunId;
  await withRest(async (r) => {
    // Checked first: the server answers a repeat with 409, which the client retries for minutes.
    const found = (await r.listCheckpoints(runId)).checkpoints.find((c) => c.tinkerPath === path);
    if (found === undefined) {
      throw new Error(`no checkpoint ${path}; list them with tinker-ts checkpoints list ${runId}`);
    }
    if (found.public === !values.unpublish) {
      throw new Error(
        `${path} is already ${found.public ? "public; pass --unpublish to make it private" : "private"}`,
      );
    }
    await (values.unpublish
      ? r.unpublishCheckpointFromTinkerPath(path)
      : r.publishCheckpointFromTinkerPath(path));
  });
  process.stdout.write(`${values.unpublish ? "unpublished" : "published"} ${path}\n`);
  return EXIT.ok;
}

const ACTIONS: Record<string, (argv: readonly string[]) => Promise<number>> = {
  list: listCheckpoints,
  download: downloadCheckpoint,
  delete: deleteCheckpoints,
  publish: publishCheckpoint,
};

export const checkpointsCommand: Subcommand = {
  run(argv) {
    return runCommand("checkpoints", async () => {
      const [action, ...rest] = argv;
      if (
        action === undefined ||
        action === "-h" ||
        action === "--help" ||
        rest.includes("--help") ||
        rest.includes("-h")
      ) {
        (action === undefined ? process.stderr : process.stdout).write(`${CHECKPOINTS_HELP}\n`);
        return action === undefined ? EXIT.usage : EXIT.ok;
      }
      const run = ACTIONS[action];
      if (run === undefined) {
        throw new UsageError(
          `unknown action "${action}"; the actions are ${Object.keys(ACTIONS).join(", ")}`,
        );
      }
      return run(rest);
    });
  },
};

import { join } from "node:path";
import { parseArgs } from "node:util";
import { tinkerCacheDir } from "../fs/atomic.js";
import { FREE_FORM_LIMITS } from "../local/server/free-form.js";
import { MAX_CHECKPOINT_NAME } from "../local/server/names.js";
import type { Subcommand } from "./subcommand.js";

/** Tinker clients accept only keys with this prefix. */
const API_KEY_PREFIX = "tml-";

/** Presets documented in `--help` (the engine is the authority on what exists). */
const PRESET_HELP: ReadonlyArray<[string, string]> = [
  [
    "tiny-bytes",
    "byte-level toy transformer (vocab 264: 256 bytes + 8 specials), random init; instant, for tests and demos",
  ],
  ["tiny-qwen3", "small Qwen3-architecture model with the real Qwen3 tokenizer, random init"],
];

function help(): string {
  const presets = PRESET_HELP.map(([n, d]) => `    ${n.padEnd(12)} ${d}`).join("\n");
  return `Usage: tinker-ts serve [options]

Runs a Tinker-compatible HTTP server on the local CPU engine. Point any Tinker client at it:
TINKER_BASE_URL=http://127.0.0.1:<port> (tinker-ts, or the Python SDK).

Options:
  --port <n>           TCP port (default 8000; 0 picks a free port)
  --host <addr>        Interface to bind (default 127.0.0.1). Binding any other address
                       requires an API key.
  --data-dir <dir>     Where checkpoints, optimizer state and run metadata are kept
                       (default ${join(tinkerCacheDir(), "server")})
  --model-dir <dir>    Serve a Hugging Face style model folder (config.json, *.safetensors,
                       tokenizer.json); repeatable. A missing or invalid folder stops the
                       server at start with the reason
  --preset <name>      Serve this built-in model preset; repeatable (default: every preset,
                       next to the --model-dir models)
  --api-key <key>      Require this key in X-API-Key on every request. Start it with "tml-"
                       (Tinker clients check the prefix). Prefer the TINKER_TS_SERVER_API_KEY
                       environment variable (arguments are visible in the process list)
  -h, --help           Show this help

Presets:
${presets}

Checkpoints are saved under the data dir and stay loadable across restarts
(tinker://<run>/weights/<name>). The data dir is private to the user (0700).

Limits (requests past them are refused with a 4xx that names the limit):
  request body         256 MiB; a zstd body may not decompress to more
  engine memory        4 GiB heap (wasm32), 80% of it for models and requests: create_model,
                       forward_backward and sample are refused up front when base weights,
                       loaded adapters and the request's estimated need do not fit; lower the
                       rank, the tokens per batch, num_samples or max_tokens
  num_samples          1..256 per sample request
  checkpoint names     1-${MAX_CHECKPOINT_NAME} characters of A-Z a-z 0-9 _ - . (not starting with a dot)
  metadata             user_metadata at most ${FREE_FORM_LIMITS.maxMetadataBytes / 1024} KiB as JSON and ${FREE_FORM_LIMITS.maxDepth} levels deep;
                       at most ${FREE_FORM_LIMITS.maxTags} tags of ${FREE_FORM_LIMITS.maxStringLength} characters
  seq_id gaps          a request waits 60 s for a missing seq_id, then it and those behind
                       it fail; a request refused when sent still uses up its seq_id`;
}

export const serveCommand: Subcommand = {
  async run(argv) {
    let values: ReturnType<typeof parse>["values"];
    try {
      values = parse(argv).values;
    } catch (err) {
      process.stderr.write(`tinker-ts serve: ${(err as Error).message}\n\n${help()}\n`);
      return 2;
    }
    if (values.help) {
      process.stdout.write(`${help()}\n`);
      return 0;
    }
    const port = values.port === undefined ? 8000 : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      process.stderr.write(
        `tinker-ts serve: --port must be an integer in 0..65535, got ${values.port}\n`,
      );
      return 2;
    }
    const fromFlag = values["api-key"] !== undefined;
    const apiKey = values["api-key"] ?? process.env.TINKER_TS_SERVER_API_KEY;
    if ((fromFlag || apiKey) && !apiKey?.startsWith(API_KEY_PREFIX)) {
      const source = fromFlag ? "--api-key" : "TINKER_TS_SERVER_API_KEY";
      process.stderr.write(
        `tinker-ts serve: ${source} must start with "${API_KEY_PREFIX}" (e.g. ${API_KEY_PREFIX}my-secret): ` +
          "Tinker clients, this one and the Python SDK, refuse any other key before sending it\n",
      );
      return 2;
    }
    const { startLocalServer } = await import("../local/server/server.js");
    const server = await startLocalServer({
      host: values.host ?? "127.0.0.1",
      port,
      ...(values["data-dir"] === undefined ? {} : { dataDir: values["data-dir"] }),
      ...(apiKey ? { apiKey } : {}),
      modelDirs: values["model-dir"] ?? [],
      ...(values.preset === undefined ? {} : { presets: values.preset }),
      logger: {
        info: () => undefined, // the startup banner below says it all
        warn: (m: string) => process.stderr.write(`warning: ${m}\n`),
        error: (m: string) => process.stderr.write(`error: ${m}\n`),
      },
    });
    let models: string;
    try {
      const caps = (await (
        await fetch(`${server.url}/api/v1/get_server_capabilities`, {
          headers: apiKey ? { "x-api-key": apiKey } : {},
        })
      ).json()) as { supported_models?: Array<{ model_name: string }> };
      models = (caps.supported_models ?? []).map((m) => m.model_name).join(", ");
    } catch (err) {
      // A listening server would keep the process alive after the error is reported.
      await server.close();
      throw err;
    }
    process.stdout.write(
      [
        `tinker-ts server listening on ${server.url}`,
        `  data dir: ${server.dataDir}`,
        `  models:   ${models || "(none)"}`,
        `  auth:     ${apiKey ? "X-API-Key required" : "none (loopback only)"}`,
        `  export TINKER_BASE_URL=${server.url}`,
        "",
      ].join("\n"),
    );
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
        process.stderr.write("tinker-ts serve: shutting down\n");
        server.close().then(resolve, resolve);
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    return 0;
  },
};

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: false,
    strict: true,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      "data-dir": { type: "string" },
      "model-dir": { type: "string", multiple: true },
      preset: { type: "string", multiple: true },
      "api-key": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}

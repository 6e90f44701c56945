import { resolve } from "node:path";
import { writeFileAtomic } from "../fs/atomic.js";
import { EXIT, parseFlags, runCommand } from "./args.js";
import type { Subcommand } from "./subcommand.js";

export const REPORT_HELP = `Usage: tinker-ts report <logdir> [--out <file>]

Write one self-contained HTML page for a training run: training curves (loss, reward, accuracy,
learning rate, tokens/s, KL), the run's config, its checkpoints and sample rollouts. The chart
library is inlined, so the page opens offline.

Arguments:
  <logdir>            The run directory of an sft or rl run (config.json, metrics.jsonl, ...)

Options:
  --out <file>        Where to write the page (default <logdir>/report.html); written atomically
  -h, --help          Show this help

Exit codes: 0 written, 1 failure (no run there, unreadable file), 2 usage error.`;

const OPTIONS = {
  out: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export const reportCommand: Subcommand = {
  run(argv) {
    return runCommand("report", async () => {
      const { values, positionals } = parseFlags(argv, OPTIONS, {
        min: 1,
        max: 1,
        name: "<logdir>",
      });
      if (values.help) {
        process.stdout.write(`${REPORT_HELP}\n`);
        return EXIT.ok;
      }
      const logDir = positionals[0]!;
      const out = resolve(values.out ?? `${logDir}/report.html`);
      const { buildReport } = await import("../report/index.js");
      const html = await buildReport(logDir);
      await writeFileAtomic(out, html);
      process.stdout.write(`${out}\n`);
      return EXIT.ok;
    });
  },
};

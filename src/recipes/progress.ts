/**
 * The progress display of a recipe run, a subscriber of its events: on a TTY a bar with step n/N,
 * ETA, tokens/s and the key metrics (cli-progress); otherwise one plain line per step, which reads
 * well in CI logs.
 */
import cliProgress from "cli-progress";
import type { RecipeEmitter } from "./events.js";

/** Options of {@link attachProgress}. */
export interface ProgressOptions {
  /** Metric keys shown on each line, in order (missing keys are skipped). */
  keys: readonly string[];
  /** Where to write. Default `process.stderr`. */
  stream?: NodeJS.WriteStream;
  /** Label before the bar, e.g. `sft` or `rl`. */
  label: string;
}

function formatValue(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : v.toPrecision(4);
}

function metricsText(row: Record<string, number>, keys: readonly string[]): string {
  return keys
    .filter((k) => typeof row[k] === "number")
    .map((k) => `${k}=${formatValue(row[k]!)}`)
    .join(" ");
}

/** Show the run's progress; returns a function that detaches it. */
export function attachProgress(events: RecipeEmitter, options: ProgressOptions): () => void {
  const stream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  let bar: cliProgress.SingleBar | undefined;
  let tokens = 0;
  let firstElapsed: number | undefined;
  const onStep: Parameters<typeof events.on<"step">>[1] = (e) => {
    tokens += e.numTokens;
    firstElapsed ??= e.elapsedSeconds;
    const span = e.elapsedSeconds - firstElapsed;
    const tokPerSec = span > 0 ? Math.round(tokens / span) : 0;
    const text = metricsText(e.metrics, options.keys);
    if (!tty) {
      stream.write(
        `${options.label} step ${e.step + 1}/${e.totalSteps} ${text} tok/s=${tokPerSec}\n`,
      );
      return;
    }
    if (bar === undefined) {
      bar = new cliProgress.SingleBar(
        {
          format: `${options.label} [{bar}] {value}/{total} eta {eta_formatted} | {metrics} | tok/s {tps}`,
          stream,
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(e.totalSteps, e.step, { metrics: "", tps: 0 });
    }
    bar.update(e.step + 1, { metrics: text, tps: tokPerSec });
  };
  const onLog = (line: string): void => {
    if (bar !== undefined) bar.stop();
    bar = undefined;
    stream.write(`${options.label}: ${line}\n`);
  };
  const onDone = (): void => {
    bar?.stop();
    bar = undefined;
  };
  events.on("step", onStep);
  events.on("log", onLog);
  events.on("done", onDone);
  return () => {
    events.off("step", onStep);
    events.off("log", onLog);
    events.off("done", onDone);
    bar?.stop();
  };
}

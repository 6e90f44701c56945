import { type LocalServer, type LocalServerOptions, startLocalServer } from "./server.js";

/** Options of {@link ensureLocalServer}; only the first call of a process uses them. */
export interface EmbeddedServerOptions {
  /** Default `tinkerCacheDir()/server`. */
  dataDir?: string;
  /** Built-in presets to serve; default all of them (see {@link LocalServerOptions.presets}). */
  presets?: string[];
  modelDirs?: string[];
  /** Suppress the one-line notice on stderr. */
  quiet?: boolean;
  /** Passed through to the server. */
  limits?: LocalServerOptions["limits"];
}

/** A reference to the process-wide embedded server. */
export interface EmbeddedServerHandle {
  /** Base URL of the server, e.g. `http://127.0.0.1:43817`. */
  readonly url: string;
  /** Releases this reference; the server stops when the last reference is released. */
  close(): Promise<void>;
}

let shared: Promise<LocalServer> | undefined;
let refs = 0;
let announced = false;

/**
 * The embedded default backend: starts a local Tinker server on 127.0.0.1 (random port) the first
 * time it is called in a process, and hands out the same server afterwards. It says so once on
 * stderr. The server does not keep the process alive; each handle's `close()` releases one
 * reference and the last one stops the server.
 *
 * `ServiceClient` calls this when there is neither a `TINKER_API_KEY` nor a base URL.
 */
export async function ensureLocalServer(
  opts: EmbeddedServerOptions = {},
): Promise<EmbeddedServerHandle> {
  if (!shared) {
    const starting = startLocalServer({
      host: "127.0.0.1",
      port: 0,
      unref: true,
      ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }),
      ...(opts.presets === undefined ? {} : { presets: opts.presets }),
      ...(opts.modelDirs === undefined ? {} : { modelDirs: opts.modelDirs }),
      ...(opts.limits === undefined ? {} : { limits: opts.limits }),
    });
    shared = starting;
    starting.catch(() => {
      if (shared === starting) shared = undefined;
    });
  }
  const current = shared;
  const server = await current;
  refs++;
  if (!announced && !opts.quiet) {
    announced = true;
    process.stderr.write(
      `tinker-ts: no TINKER_API_KEY or base URL set, so training runs on the local CPU engine at ${server.url} (data in ${server.dataDir})\n`,
    );
  }
  let released = false;
  return {
    url: server.url,
    close: async () => {
      if (released) return;
      released = true;
      refs--;
      if (refs === 0 && shared === current) {
        shared = undefined;
        await server.close();
      }
    },
  };
}

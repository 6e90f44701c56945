/**
 * The local Tinker-compatible server: `startLocalServer()` runs the HTTP API over the local engine,
 * `ensureLocalServer()` is the process-wide embedded default backend.
 */
export {
  type EmbeddedServerHandle,
  type EmbeddedServerOptions,
  ensureLocalServer,
} from "./embedded.js";
export {
  type LocalServer,
  type LocalServerLimits,
  type LocalServerOptions,
  startLocalServer,
} from "./server.js";

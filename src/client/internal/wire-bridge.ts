/**
 * Glue between the client runtime and the wire modules (`src/client/wire/`): the wire format
 * lives there; this file only adapts names and adds the small response checks the runtime needs.
 */
import { APIResponseValidationError } from "../errors.js";
import { type ClientConfig, clientConfigSchema, parseResponse } from "../wire/responses.js";

/** Server feature flags from `POST /api/v1/client/config`, every one defaulted. */
export type ServerFlags = ClientConfig;

/** Parse `client/config`; unknown fields are ignored, bad types name the field. */
export function parseServerFlags(value: unknown): ServerFlags {
  return parseResponse(clientConfigSchema, value, "POST /api/v1/client/config");
}

/** Read a required string field, or throw naming the endpoint and the field. */
export function requireString(value: unknown, field: string, endpoint: string): string {
  const v =
    value !== null && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)[field]
      : undefined;
  if (typeof v !== "string") {
    throw new APIResponseValidationError(
      `${endpoint}: response field "${field}" is missing or not a string`,
      { request: endpoint, body: value },
    );
  }
  return v;
}

export { chunkDatumsWithSizes, estimateDatumBytesLegacy } from "../wire/chunking.js";
export { forwardBackwardOutputFromJson, sampleResponseFromJson } from "../wire/json.js";
export { combineForwardBackwardOutputs } from "../wire/metrics.js";
export { parseTinkerPath, type TinkerPath } from "../wire/paths.js";
export * as bodies from "../wire/requests.js";
export { zstdCompress } from "../wire/zstd.js";

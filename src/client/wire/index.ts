/**
 * The Tinker wire format: the single place that knows which bytes go on the wire, both ways.
 *
 * - `json.ts`: camelCase SDK types <-> the snake_case JSON the reference SDK sends.
 * - `json-text.ts`: compact or Python-identical body text.
 * - `requests.ts`: one body builder per endpoint, and `requestSchemas` for servers.
 * - `responses.ts`: response schemas, `parseResponse`, the retrieve_future classifier, `toWire`.
 * - `proto.ts`: protobuf ForwardBackwardRequest / ForwardBackwardOutput / SampleResponse.
 * - `zstd.ts`, `chunking.ts`, `metrics.ts`, `paths.ts`: compression, request splitting, metric
 *   merging, `tinker://` paths and API paths.
 */

export * from "./chunking.js";
export * from "./json.js";
export * from "./json-text.js";
export * from "./metrics.js";
export * from "./paths.js";
export * from "./proto.js";
export * from "./requests.js";
export * from "./responses.js";
export * from "./zstd.js";

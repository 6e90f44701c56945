/** The version of this package (kept in step with package.json). */
export const TINKER_TS_VERSION = "0.1.0";

/**
 * The `sdk_version` we report to `client/config`, `dynamic_config` and `create_session`.
 *
 * The server resolves its feature flags from this value, so it is the protocol level we
 * implement, not our package version: we report the reference SDK version whose behaviour we
 * reproduce (0.25.0) and honour every flag the server may return for it (JWT exchange, protobuf
 * forward_backward with optional zstd, chunk limits, byte budgets, sampling limits,
 * create-via-load). Our own identity travels in `User-Agent` and `X-Stainless-Package-Version`.
 */
export const PROTOCOL_SDK_VERSION = "0.25.0";

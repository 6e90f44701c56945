/**
 * Wire-format throughput: one forward_backward of 128 datums x 2048 tokens (cross-entropy inputs),
 * encoded as the 0.25.0 protobuf body and as the legacy JSON body, decoded on the server side,
 * and zstd-compressed. Baselines measured in the same run: a plain copy of the protobuf bytes
 * (memory bandwidth) and a generic fork/join encoding with @bufbuild/protobuf's BinaryWriter.
 *
 *   npx tsx bench/wire/run.ts
 */

import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { type Datum, makeDatum } from "../../src/client/types/datum.js";
import { TensorData } from "../../src/client/types/tensor-data.js";
import { stringifyCompact } from "../../src/client/wire/json-text.js";
import {
  decodeForwardBackwardOutput,
  decodeForwardBackwardRequest,
  decodeSampleResponse,
  encodeForwardBackwardOutput,
  encodeForwardBackwardRequest,
  encodeSampleResponse,
} from "../../src/client/wire/proto.js";
import { forwardBackwardJsonBody, parseRequest } from "../../src/client/wire/requests.js";
import { zstdBackend, zstdCompress, zstdDecompress } from "../../src/client/wire/zstd.js";
import { writeBenchResults } from "../write-results.js";

const DATUMS = 128;
const TOKENS = 2048;

function makeBatch(): Datum[] {
  let x = 1;
  const rnd = () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return x;
  };
  return Array.from({ length: DATUMS }, () => {
    const toks = Int32Array.from({ length: TOKENS + 1 }, () => rnd() % 151_000);
    const weights = Float32Array.from({ length: TOKENS }, (_, i) => (i < TOKENS / 4 ? 0 : 1));
    return makeDatum(toks.subarray(0, TOKENS), { target_tokens: toks.subarray(1), weights });
  });
}

/** The same message through BinaryWriter's fork/join (the generic way). */
function encodeWithBinaryWriter(data: Datum[]): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).string("model");
  w.tag(2, WireType.Varint).int32(1);
  for (const d of data) {
    w.tag(3, WireType.LengthDelimited).fork();
    for (const c of d.modelInput.chunks) {
      if (c.type !== "encoded_text") continue;
      w.tag(1, WireType.LengthDelimited).fork();
      w.tag(1, WireType.LengthDelimited).fork();
      w.tag(1, WireType.LengthDelimited).bytes(
        new Uint8Array(c.tokens.buffer, c.tokens.byteOffset, c.tokens.byteLength),
      );
      w.join().join();
    }
    for (const [k, t] of Object.entries(d.lossFnInputs)) {
      w.tag(2, WireType.LengthDelimited).fork();
      w.tag(1, WireType.LengthDelimited).string(k);
      w.tag(2, WireType.LengthDelimited).fork();
      let bytes: Uint8Array;
      if (t.dtype === "int64") {
        const wide = new BigInt64Array(t.data.length);
        for (let i = 0; i < t.data.length; i++) wide[i] = BigInt(t.data[i]!);
        bytes = new Uint8Array(wide.buffer);
      } else bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      w.tag(1, WireType.LengthDelimited).bytes(bytes);
      w.tag(3, WireType.Varint).int32(t.dtype === "int64" ? 2 : 1);
      w.tag(4, WireType.LengthDelimited).fork();
      for (const s of t.shape) w.int64(s);
      w.join();
      w.join().join();
    }
    w.join();
  }
  w.tag(4, WireType.LengthDelimited).string("cross_entropy");
  return w.finish();
}

async function time(
  label: string,
  bytes: number,
  fn: () => unknown | Promise<unknown>,
  minMs = 1500,
) {
  await fn(); // warm-up
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < minMs || n < 3) {
    await fn();
    n++;
  }
  const ms = (performance.now() - start) / n;
  return { label, ms, mbPerS: bytes / 1e6 / (ms / 1000) };
}

const data = makeBatch();
const proto = encodeForwardBackwardRequest({
  modelId: "model",
  seqId: 1,
  data,
  lossFn: "cross_entropy",
});
const jsonText = stringifyCompact(
  forwardBackwardJsonBody({ modelId: "model", seqId: 1, data, lossFn: "cross_entropy" }),
);
const jsonBytes = Buffer.byteLength(jsonText);
const output = {
  lossFnOutputType: "ArrayRecord",
  lossFnOutputs: data.map(() => ({
    logprobs: TensorData.fromTyped(Float32Array.from({ length: TOKENS }, (_, i) => -i / TOKENS)),
  })),
  metrics: { "loss:sum": 1234.5 },
};
const outputBytes = encodeForwardBackwardOutput(output);
const compressed = await zstdCompress(proto);
// An RL rollout answer: 16 sampled sequences with logprobs.
const sampleBytes = encodeSampleResponse({
  sequences: Array.from({ length: 16 }, () => ({
    stopReason: "length" as const,
    tokens: Array.from({ length: TOKENS }, (_, i) => (i * 7919) % 151_000),
    logprobs: Array.from({ length: TOKENS }, (_, i) => -i / TOKENS),
  })),
  promptCacheHitTokens: 0,
});

const rows = [
  await time("baseline: copy protobuf bytes", proto.length, () => proto.slice()),
  await time("protobuf encode (tinker-ts sized writer)", proto.length, () =>
    encodeForwardBackwardRequest({ modelId: "model", seqId: 1, data, lossFn: "cross_entropy" }),
  ),
  await time("baseline: protobuf encode (BinaryWriter fork/join)", proto.length, () =>
    encodeWithBinaryWriter(data),
  ),
  await time("JSON encode (build body + stringify)", jsonBytes, () =>
    stringifyCompact(
      forwardBackwardJsonBody({ modelId: "model", seqId: 1, data, lossFn: "cross_entropy" }),
    ),
  ),
  await time("protobuf decode request (server)", proto.length, () =>
    decodeForwardBackwardRequest(proto),
  ),
  await time("JSON parse + schema (server)", jsonBytes, () =>
    parseRequest("forwardBackwardJson", JSON.parse(jsonText), "POST /api/v1/forward_backward"),
  ),
  await time("protobuf encode output (server)", outputBytes.length, () =>
    encodeForwardBackwardOutput(output),
  ),
  await time("protobuf decode output (client)", outputBytes.length, () =>
    decodeForwardBackwardOutput(outputBytes),
  ),
  await time(`zstd compress level 3 (${zstdBackend})`, proto.length, () => zstdCompress(proto)),
  await time(`zstd decompress (${zstdBackend})`, proto.length, () =>
    zstdDecompress(compressed, proto.length),
  ),
  await time("protobuf decode sample response (client)", sampleBytes.length, () =>
    decodeSampleResponse(sampleBytes),
  ),
];

const base = rows[0]!.ms;
const protoEnc = rows[1]!.ms;
const jsonEnc = rows[3]!.ms;
console.log(`forward_backward: ${DATUMS} datums x ${TOKENS} tokens`);
console.log(
  `protobuf body ${(proto.length / 1e6).toFixed(2)} MB, JSON body ${(jsonBytes / 1e6).toFixed(2)} MB (x${(jsonBytes / proto.length).toFixed(2)}), zstd ${(compressed.length / 1e6).toFixed(2)} MB (x${(proto.length / compressed.length).toFixed(1)} smaller)`,
);
console.log("");
console.log(
  `${"operation".padEnd(52)} ${"ms".padStart(9)} ${"MB/s".padStart(9)} ${"x copy".padStart(8)}`,
);
for (const r of rows) {
  console.log(
    `${r.label.padEnd(52)} ${r.ms.toFixed(2).padStart(9)} ${r.mbPerS.toFixed(0).padStart(9)} ${(r.ms / base).toFixed(1).padStart(8)}`,
  );
}
console.log("");
console.log(`JSON encode time / protobuf encode time: ${(jsonEnc / protoEnc).toFixed(1)}x`);
console.log(`BinaryWriter time / sized writer time: ${(rows[2]!.ms / protoEnc).toFixed(1)}x`);

writeBenchResults("wire", {
  workload: { datums: DATUMS, tokens: TOKENS },
  sizes: {
    protobuf: proto.length,
    json: jsonBytes,
    zstd: compressed.length,
    output: outputBytes.length,
  },
  rows,
  ratios: {
    jsonOverProtobufEncode: jsonEnc / protoEnc,
    binaryWriterOverSizedWriter: rows[2]!.ms / protoEnc,
  },
  zstdBackend,
});

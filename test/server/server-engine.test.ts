/**
 * The server on the real local engine (tiny-bytes preset): protobuf and zstd training requests,
 * numerics checked against formulas, training that learns, deterministic sampling from saved
 * weights, and a restart that restores the exact weights.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum } from "../../src/client/types/datum.js";
import { ModelInput } from "../../src/client/types/model-input.js";
import {
  decodeForwardBackwardOutput,
  decodeSampleResponse,
  encodeForwardBackwardRequest,
} from "../../src/client/wire/proto.js";
import { zstdCompress } from "../../src/client/wire/zstd.js";
import type { LocalEngine } from "../../src/local/engine/api.js";
import type { LocalServer } from "../../src/local/server/server.js";
import { Raw, startTestServer, tempDir } from "./helpers.js";
import { realEngine } from "./real-engine.js";

const MODEL = "tiny-bytes";
const text = Array.from(Buffer.from("the cat sat on the mat. "));
const data = [
  makeDatum(ModelInput.fromInts(text.slice(0, -1)), {
    target_tokens: text.slice(1),
    weights: text.slice(1).map(() => 1),
  }),
];

async function protoFb(
  api: Raw,
  modelId: string,
  seqId: number,
  forwardOnly: boolean,
  zstd = false,
) {
  let body = encodeForwardBackwardRequest({
    modelId,
    seqId,
    data,
    lossFn: "cross_entropy",
    forwardOnly,
  });
  const headers: Record<string, string> = { "content-type": "application/x-protobuf" };
  if (zstd) {
    body = await zstdCompress(body);
    headers["content-encoding"] = "zstd";
  }
  const sub = await api.post("/api/v1/forward_backward", body, headers);
  expect(sub.status, JSON.stringify(sub.json)).toBe(200);
  const res = await api.result(String(sub.json.request_id), "application/x-protobuf");
  expect(res.headers.get("content-type")).toBe("application/x-protobuf");
  return decodeForwardBackwardOutput(res.bytes);
}

describe("local server on the real engine (tiny-bytes)", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let engine: LocalEngine;
  let closeEngine: () => Promise<void>;
  let server: LocalServer;
  let api: Raw;
  let sid: string;

  beforeAll(async () => {
    tmp = await tempDir("server-engine");
    const e = await realEngine();
    engine = e.engine;
    closeEngine = e.close;
    server = await startTestServer(tmp.dir, engine);
    api = new Raw(server.url);
    sid = String(
      (await api.post("/api/v1/create_session", { tags: [], user_metadata: {} })).json.session_id,
    );
  });
  afterAll(async () => {
    await server.close();
    await closeEngine();
    await tmp.cleanup();
  });

  it("trains over protobuf (plain and zstd): loss matches its formula and goes down", async () => {
    const modelId = await api.createModel(sid, 0, MODEL, { rank: 8, seed: 1 });
    const info = await api.post("/api/v1/get_info", { model_id: modelId, type: "get_info" });
    expect(info.json).toMatchObject({ model_id: modelId, lora_rank: 8, model_name: MODEL });

    let seq = 1;
    const first = await protoFb(api, modelId, seq++, true);
    const lp = first.lossFnOutputs[0]!.logprobs!.toDense();
    expect(lp.length).toBe(text.length - 1);
    const formula = -Array.from(lp).reduce((a, b) => a + b, 0); // weights are all 1
    expect(first.metrics["loss:sum"]).toBeCloseTo(formula, 3);

    const losses: number[] = [];
    for (let step = 0; step < 8; step++) {
      const out = await protoFb(api, modelId, seq++, false, step % 2 === 1);
      losses.push(out.metrics["loss:sum"]!);
      const opt = await api.run("/api/v1/optim_step", {
        adam_params: { learning_rate: 0.02 },
        model_id: modelId,
        seq_id: seq++,
        type: "optim_step",
      });
      expect(opt.json.error).toBeUndefined();
    }
    expect(losses[0]).toBeCloseTo(first.metrics["loss:sum"]!, 3);
    expect(losses[losses.length - 1]!, losses.join(", ")).toBeLessThan(losses[0]! * 0.95);

    // the server adds nothing to the numbers: same request straight to the engine
    const directly = await engine.forwardBackward(modelId, data, "cross_entropy", undefined, true);
    const viaServer = await protoFb(api, modelId, seq++, true);
    expect(viaServer.metrics["loss:sum"]).toBeCloseTo(directly.metrics["loss:sum"]!, 4);

    // sampler weights: deterministic under a seed, and protobuf results decode
    const saved = await api.run("/api/v1/save_weights_for_sampler", {
      model_id: modelId,
      path: "trained",
      seq_id: seq++,
      type: "save_weights_for_sampler",
    });
    const ss = await api.post("/api/v1/create_sampling_session", {
      session_id: sid,
      sampling_session_seq_id: 0,
      model_path: saved.json.path,
      type: "create_sampling_session",
    });
    const sample = async (seqId: number) => {
      const sub = await api.post("/api/v1/asample", {
        num_samples: 2,
        prompt: { chunks: [{ tokens: text.slice(0, 8), type: "encoded_text" }] },
        sampling_params: { max_tokens: 6, seed: 42, temperature: 1, top_k: -1, top_p: 1 },
        sampling_session_id: ss.json.sampling_session_id,
        seq_id: seqId,
        prompt_logprobs: true,
        topk_prompt_logprobs: 0,
        type: "sample",
      });
      const r = await api.result(String(sub.json.request_id), "application/x-protobuf");
      return decodeSampleResponse(r.bytes);
    };
    const s1 = await sample(0);
    const s2 = await sample(1);
    expect(s1.sequences).toHaveLength(2);
    expect(s1.sequences[0]!.tokens).toHaveLength(6);
    expect(s2.sequences.map((s) => s.tokens)).toEqual(s1.sequences.map((s) => s.tokens));
    expect(s1.promptLogprobs).toHaveLength(8);
    expect(s1.promptLogprobs![0]).toBeNull();

    // ephemeral sampler from the same weights samples the same tokens
    const eph = await api.run("/api/v1/save_weights_for_sampler", {
      model_id: modelId,
      seq_id: seq++,
      sampling_session_seq_id: 1,
      type: "save_weights_for_sampler",
    });
    const r3 = await api.run("/api/v1/asample", {
      num_samples: 2,
      prompt: { chunks: [{ tokens: text.slice(0, 8), type: "encoded_text" }] },
      sampling_params: { max_tokens: 6, seed: 42, temperature: 1, top_k: -1, top_p: 1 },
      sampling_session_id: eph.json.sampling_session_id,
      seq_id: 0,
      prompt_logprobs: false,
      type: "sample",
    });
    expect((r3.json.sequences as Array<{ tokens: number[] }>).map((s) => s.tokens)).toEqual(
      s1.sequences.map((s) => s.tokens),
    );
  });

  it("fails a future with category user, naming the field, when the engine rejects a datum", async () => {
    const modelId = await api.createModel(sid, 5, MODEL, { rank: 2, seed: 1 });
    const bad = await api.run("/api/v1/forward_backward", {
      forward_backward_input: {
        data: [
          {
            model_input: { chunks: [{ tokens: [1, 2, 3], type: "encoded_text" }] },
            loss_fn_inputs: {
              target_tokens: { data: [2, 3], dtype: "int64", shape: [2] },
              weights: { data: [1, 1], dtype: "float32", shape: [2] },
            },
          },
        ],
        loss_fn: "cross_entropy",
      },
      model_id: modelId,
      seq_id: 1,
    });
    expect(bad.json.category).toBe("user");
    expect(String(bad.json.error)).toMatch(/target_tokens/);
    // the failed request consumed seq_id 1; the model keeps working at seq_id 2
    const ok = await protoFb(api, modelId, 2, true);
    expect(ok.metrics["loss:sum"]).toBeGreaterThan(0);
  });

  it("rejects corrupt and oversized zstd bodies with 4xx and stays healthy", async () => {
    const garbage = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5]);
    const bad = await api.post("/api/v1/forward_backward", garbage, {
      "content-type": "application/x-protobuf",
      "content-encoding": "zstd",
    });
    expect(bad.status).toBe(400);
    expect(String(bad.json.detail)).toMatch(/zstd/);
    const t = await tempDir("server-bomb");
    const small = await startTestServer(t.dir, engine, {
      limits: { maxDecompressedBytes: 1 << 20 },
    });
    try {
      const bomb = await zstdCompress(new Uint8Array(16 << 20));
      expect(bomb.length).toBeLessThan(1 << 20);
      const r = await new Raw(small.url).post("/api/v1/forward_backward", bomb, {
        "content-type": "application/x-protobuf",
        "content-encoding": "zstd",
      });
      expect(r.status).toBe(413);
      expect(String(r.json.detail)).toMatch(/1048576-byte limit.*maxDecompressedBytes/);
      expect(await new Raw(small.url).healthy()).toBe(true);
    } finally {
      await small.close();
      await t.cleanup();
    }
    expect(await api.healthy()).toBe(true);
  });

  it("restores exact weights and optimizer state after a restart on a fresh engine", async () => {
    const t = await tempDir("server-engine-restart");
    try {
      const s1 = await startTestServer(t.dir, engine);
      const a1 = new Raw(s1.url);
      const sess = String((await a1.post("/api/v1/create_session", {})).json.session_id);
      const modelId = await a1.createModel(sess, 0, MODEL, { rank: 4, seed: 3 });
      await protoFb(a1, modelId, 1, false);
      await a1.run("/api/v1/optim_step", {
        adam_params: { learning_rate: 0.02 },
        model_id: modelId,
        seq_id: 2,
      });
      const saved = await a1.run("/api/v1/save_weights", {
        model_id: modelId,
        path: "s",
        seq_id: 3,
      });
      const before = await protoFb(a1, modelId, 4, true);
      await s1.close();

      const fresh = await realEngine();
      const s2 = await startTestServer(t.dir, fresh.engine);
      try {
        const a2 = new Raw(s2.url);
        const sess2 = String((await a2.post("/api/v1/create_session", {})).json.session_id);
        const loaded = await a2.run("/api/v1/load_weights", {
          session_id: sess2,
          model_seq_id: 0,
          path: saved.json.path,
          optimizer: true,
          type: "load_weights",
        });
        const restored = String(loaded.json.model_id);
        const after = await protoFb(a2, restored, 1, true);
        expect(Array.from(after.lossFnOutputs[0]!.logprobs!.toDense())).toEqual(
          Array.from(before.lossFnOutputs[0]!.logprobs!.toDense()),
        );
        // legacy addressing: create_model, then load_state into it
        const legacy = await a2.createModel(sess2, 1, MODEL, { rank: 4 });
        const l2 = await a2.run("/api/v1/load_weights", {
          model_id: legacy,
          seq_id: 1,
          path: saved.json.path,
          optimizer: false,
          type: "load_weights",
        });
        expect(l2.json.error).toBeUndefined();
        const legacyOut = await protoFb(a2, legacy, 2, true);
        expect(legacyOut.metrics["loss:sum"]).toBeCloseTo(after.metrics["loss:sum"]!, 5);
      } finally {
        await s2.close();
        await fresh.close();
      }
    } finally {
      await t.cleanup();
    }
  });
});

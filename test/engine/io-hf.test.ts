import { createHash } from "node:crypto";
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  writeFile,
} from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import {
  ensureTinyBytesTokenizer,
  getPreset,
  hfHubCacheDir,
  hfWeightShapes,
  loadHfModelFolder,
  ModelFileError,
  ModelNotAvailableError,
  parseHfConfig,
  readSafetensors,
  resolveModelFolder,
  toHfConfig,
  writeHfModelFolder,
  writeSafetensors,
} from "../../src/local/engine/io/index.js";
import type { ModelConfig } from "../../src/local/engine/model/config.js";
import { expectedTensorShapes, initRandomWeights } from "../../src/local/engine/model/weights.js";

// A real Qwen3-0.6B config.json (field names and values as published).
const QWEN3_06B = {
  architectures: ["Qwen3ForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: "silu",
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: "qwen3",
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.51.0",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

// A Llama-3.1-8B-Instruct config.json.
const LLAMA_31_8B = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  hidden_act: "silu",
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 14336,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: {
    factor: 8.0,
    low_freq_factor: 1.0,
    high_freq_factor: 4.0,
    original_max_position_embeddings: 8192,
    rope_type: "llama3",
  },
  rope_theta: 500000.0,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  transformers_version: "4.43.0.dev0",
  use_cache: true,
  vocab_size: 128256,
};

describe("parseHfConfig", () => {
  it("parses a Qwen3 config (QK-norm, explicit head_dim, tied) and merges generation_config eos ids", () => {
    const c = parseHfConfig(QWEN3_06B, { generationConfig: { eos_token_id: [151645, 151643] } });
    expect(c).toEqual({
      arch: "qwen3",
      vocabSize: 151936,
      hiddenSize: 1024,
      intermediateSize: 3072,
      numLayers: 28,
      numHeads: 16,
      numKvHeads: 8,
      headDim: 128,
      rmsNormEps: 1e-6,
      ropeTheta: 1000000,
      maxPositionEmbeddings: 40960,
      tieWordEmbeddings: true,
      qkNorm: true,
      bosTokenId: 151643,
      eosTokenIds: [151645, 151643],
    });
  });

  it("parses a Llama-3.1 config with llama3 rope scaling and several eos ids", () => {
    const c = parseHfConfig(LLAMA_31_8B);
    expect(c.arch).toBe("llama");
    expect(c.qkNorm).toBe(false);
    expect(c.headDim).toBe(128); // hidden_size / num_attention_heads
    expect(c.tieWordEmbeddings).toBe(false);
    expect(c.ropeTheta).toBe(500000);
    expect(c.rmsNormEps).toBe(1e-5);
    expect(c.ropeScaling).toEqual({
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    expect(c.eosTokenIds).toEqual([128001, 128008, 128009]);
    expect(c.bosTokenId).toBe(128000);
    expect(parseHfConfig(toHfConfig(c))).toEqual(c);
  });

  it("applies transformers' defaults for absent optional keys", () => {
    const minimal = {
      model_type: "llama",
      vocab_size: 100,
      hidden_size: 64,
      intermediate_size: 128,
      num_hidden_layers: 2,
      num_attention_heads: 4,
    };
    expect(parseHfConfig(minimal)).toEqual({
      arch: "llama",
      vocabSize: 100,
      hiddenSize: 64,
      intermediateSize: 128,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 4,
      headDim: 16,
      rmsNormEps: 1e-6,
      ropeTheta: 10000,
      maxPositionEmbeddings: 2048,
      tieWordEmbeddings: false,
      qkNorm: false,
      eosTokenIds: [],
    });
    const q = parseHfConfig({ ...minimal, model_type: "qwen3" });
    expect([q.headDim, q.maxPositionEmbeddings, q.qkNorm]).toEqual([128, 32768, true]);
  });

  it("rejects unsupported architectures and features naming the key and what is supported", () => {
    const err = (j: object) => {
      try {
        parseHfConfig(j);
      } catch (e) {
        return e as ModelFileError;
      }
      throw new Error("expected an error");
    };
    const moe = err({ ...QWEN3_06B, model_type: "qwen3_moe", num_experts: 128 });
    expect(moe).toBeInstanceOf(ModelFileError);
    expect(moe.field).toBe("model_type");
    expect(moe.message).toMatch(
      /"qwen3_moe" is not supported \(mixture-of-experts.*"qwen3" or "llama"/,
    );
    expect(err({ ...QWEN3_06B, model_type: "gpt2" }).message).toMatch(
      /"gpt2" is not supported; the local engine runs/,
    );
    expect(err({ ...LLAMA_31_8B, rope_scaling: { rope_type: "yarn", factor: 4 } }).field).toBe(
      "rope_scaling",
    );
    expect(err({ ...LLAMA_31_8B, attention_bias: true }).field).toBe("attention_bias");
    expect(err({ ...QWEN3_06B, use_sliding_window: true }).field).toBe("use_sliding_window");
    expect(err({ ...LLAMA_31_8B, num_key_value_heads: 5 }).message).toMatch(
      /multiple of num_key_value_heads/,
    );
    expect(err({ ...LLAMA_31_8B, hidden_size: "4096" }).message).toMatch(
      /"hidden_size" must be a positive integer/,
    );
    expect(err({ ...LLAMA_31_8B, hidden_act: "gelu" }).field).toBe("hidden_act");
  });
});

function sameBits(a: Float32Array | undefined, b: Float32Array): boolean {
  return (
    a !== undefined &&
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    )
  );
}

function seededWeights(
  config: ModelConfig,
  seed = 1,
): Map<string, { shape: number[]; data: Float32Array }> {
  let s = seed;
  const m = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of hfWeightShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) {
      s = (s * 1664525 + 1013904223) >>> 0;
      data[i] = s / 2 ** 32 - 0.5;
    }
    m.set(name, { shape, data });
  }
  return m;
}

const TINY_QWEN3: ModelConfig = {
  ...parseHfConfig(QWEN3_06B),
  vocabSize: 264,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 8,
  tieWordEmbeddings: false,
};

let work: string;
let tokDir: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "tinker-hf-"));
  tokDir = await ensureTinyBytesTokenizer(join(work, "tinker-cache"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("model folders", () => {
  it("expects the Hugging Face tensor names and shapes", () => {
    const shapes = hfWeightShapes(parseHfConfig(QWEN3_06B));
    expect(shapes.get("model.embed_tokens.weight")).toEqual([151936, 1024]);
    expect(shapes.get("model.layers.27.self_attn.q_proj.weight")).toEqual([2048, 1024]);
    expect(shapes.get("model.layers.0.self_attn.k_proj.weight")).toEqual([1024, 1024]);
    expect(shapes.get("model.layers.0.self_attn.o_proj.weight")).toEqual([1024, 2048]);
    expect(shapes.get("model.layers.0.self_attn.q_norm.weight")).toEqual([128]);
    expect(shapes.get("model.layers.0.mlp.down_proj.weight")).toEqual([1024, 3072]);
    expect(shapes.has("lm_head.weight")).toBe(false);
    expect(shapes.size).toBe(1 + 28 * 11 + 1);
    const llama = hfWeightShapes(parseHfConfig(LLAMA_31_8B));
    expect(llama.has("model.layers.0.self_attn.q_norm.weight")).toBe(false);
    expect(llama.get("lm_head.weight")).toEqual([128256, 4096]);
  });

  it("agrees with the model's weight names: preset weights export to a folder and load back bit-exactly", async () => {
    for (const name of ["tiny-bytes", "tiny-qwen3"] as const) {
      const cfg = getPreset(name).config;
      expect([...hfWeightShapes(cfg)]).toEqual(
        expect.arrayContaining([...expectedTensorShapes(cfg)]),
      );
      expect(hfWeightShapes(cfg).size).toBe(expectedTensorShapes(cfg).size);
    }
    const preset = getPreset("tiny-bytes");
    const weights = initRandomWeights(preset.config, preset.seed);
    const dir = join(work, "tiny-bytes-export");
    await writeHfModelFolder(dir, {
      config: preset.config,
      weights,
      tokenizerDir: await preset.tokenizerDir({ cacheDir: join(work, "tinker-cache") }),
    });
    const loaded = await loadHfModelFolder(dir);
    expect(loaded.config).toEqual(preset.config);
    for (const [n, t] of weights)
      expect(sameBits(loaded.weights.get(n)?.data, t.data), n).toBe(true);
  });

  it("writes and loads a sharded bf16 folder, keeping only the engine's tensors", async () => {
    const dir = join(work, "m-sharded");
    const weights = seededWeights(TINY_QWEN3);
    await writeHfModelFolder(dir, {
      config: TINY_QWEN3,
      weights,
      tokenizerDir: tokDir,
      dtype: "BF16",
      maxShardBytes: 6000,
    });
    const files = (await readdir(dir)).sort();
    expect(files).toContain("model.safetensors.index.json");
    expect(
      files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length,
    ).toBeGreaterThan(1);
    expect(files).toContain("tokenizer.json");
    const loaded = await loadHfModelFolder(dir);
    expect(loaded.config).toEqual(TINY_QWEN3);
    expect(loaded.tokenizerDir).toBe(dir);
    expect(loaded.weights.size).toBe(weights.size);
    const q = loaded.weights.get("model.layers.1.self_attn.q_proj.weight");
    const ref = weights.get("model.layers.1.self_attn.q_proj.weight");
    expect(q?.dtype).toBe("BF16");
    for (let i = 0; i < (ref?.data.length ?? 0); i++) {
      expect(Math.abs((q?.data[i] ?? 0) - (ref?.data[i] ?? 0))).toBeLessThanOrEqual(2 ** -9);
    }
  });

  it("writes and loads a Llama-3.1-style folder (no QK-norm, llama3 rope scaling, tied)", async () => {
    const llama: ModelConfig = {
      ...parseHfConfig(LLAMA_31_8B),
      vocabSize: 264,
      hiddenSize: 32,
      intermediateSize: 48,
      numLayers: 1,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 8,
      tieWordEmbeddings: true,
    };
    const dir = join(work, "m-llama");
    const weights = seededWeights(llama, 5);
    await writeHfModelFolder(dir, { config: llama, weights, tokenizerDir: tokDir, dtype: "F16" });
    const loaded = await loadHfModelFolder(dir);
    expect(loaded.config).toEqual(llama);
    expect(loaded.weights.has("model.layers.0.self_attn.q_norm.weight")).toBe(false);
    expect(loaded.weights.has("lm_head.weight")).toBe(false);
    expect(loaded.weights.get("model.norm.weight")?.dtype).toBe("F16");
  });

  it("names the missing tensor, a mis-shaped tensor, and missing files", async () => {
    const dir = join(work, "m-bad");
    const weights = seededWeights(TINY_QWEN3);
    await writeHfModelFolder(dir, { config: TINY_QWEN3, weights, tokenizerDir: tokDir });
    const partial = new Map(weights);
    partial.delete("model.layers.1.self_attn.k_norm.weight");
    partial.set("model.layers.0.rotary_emb.inv_freq", { shape: [4], data: new Float32Array(4) });
    await writeSafetensors(join(dir, "model.safetensors"), partial);
    const e1 = (await loadHfModelFolder(dir).catch((e: unknown) => e)) as ModelFileError;
    expect(e1).toBeInstanceOf(ModelFileError);
    expect(e1.message).toMatch(
      /missing tensor "model\.layers\.1\.self_attn\.k_norm\.weight" with shape \[8\]/,
    );
    expect(e1.field).toBe("model.layers.1.self_attn.k_norm.weight");

    const wrong = new Map(weights);
    wrong.set("model.norm.weight", { shape: [17], data: new Float32Array(17) });
    await writeSafetensors(join(dir, "model.safetensors"), wrong);
    await expect(loadHfModelFolder(dir)).rejects.toThrow(
      /"model\.norm\.weight" has shape \[17\] but config\.json implies \[16\]/,
    );

    await rm(join(dir, "tokenizer.json"));
    await expect(loadHfModelFolder(dir)).rejects.toThrow(/tokenizer\.json: file not found/);
    await rm(join(dir, "config.json"));
    await expect(loadHfModelFolder(dir)).rejects.toThrow(/config\.json: file not found/);
  });
});

// ---------------------------------------------------------------------------------------------
// A local server imitating the Hugging Face hub endpoints @huggingface/hub uses for downloads.

interface FakeRepo {
  sha: string;
  files: Map<string, Uint8Array>;
}

class FakeHub {
  repos = new Map<string, FakeRepo>();
  requests: string[] = [];
  server: Server;
  url = "";
  constructor() {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
  }
  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
  }
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    this.requests.push(`${req.method} ${url.pathname}`);
    const path = decodeURIComponent(url.pathname);
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree|paths-info)\/([^/]+)/.exec(path);
    if (m) {
      const repo = this.repos.get(m[1] as string);
      if (!repo) return this.json(res, 404, { error: "Repository not found" });
      const oid = (d: Uint8Array) => createHash("sha1").update(d).digest("hex");
      if (m[2] === "revision")
        return this.json(res, 200, {
          _id: "x",
          id: m[1],
          sha: repo.sha,
          private: false,
          lastModified: "2025-01-01T00:00:00Z",
        });
      if (m[2] === "tree") {
        // Non-recursive listing: top-level files, and one "directory" entry per folder.
        const entries: object[] = [];
        const dirs = new Set<string>();
        for (const [p, d] of repo.files) {
          if (p.includes("/")) dirs.add(p.split("/")[0] as string);
          else entries.push({ type: "file", path: p, size: d.length, oid: oid(d) });
        }
        for (const d of dirs) entries.push({ type: "directory", path: d, size: 0, oid: "0" });
        return this.json(res, 200, entries);
      }
      let body = "";
      for await (const chunk of req) body += chunk;
      const { paths } = JSON.parse(body) as { paths: string[] };
      return this.json(
        res,
        200,
        paths
          .filter((p) => repo.files.has(p))
          .map((p) => {
            const d = repo.files.get(p) as Uint8Array;
            return {
              type: "file",
              path: p,
              size: d.length,
              oid: oid(d),
              lastCommit: { id: repo.sha, title: "init", date: "2025-01-01T00:00:00Z" },
            };
          }),
      );
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const data = m ? this.repos.get(m[1] as string)?.files.get(m[3] as string) : undefined;
    if (!m || !data) {
      res.writeHead(404, { "X-Error-Code": "EntryNotFound" });
      return void res.end("not found");
    }
    const etag = `"${createHash("sha1").update(data).digest("hex")}"`;
    const range = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? "");
    if (range) {
      const start = Number(range[1]);
      const end = Math.min(Number(range[2]), data.length - 1);
      res.writeHead(206, {
        "Content-Range": `bytes ${start}-${end}/${data.length}`,
        ETag: etag,
        "Content-Length": end - start + 1,
      });
      return void res.end(data.subarray(start, end + 1));
    }
    res.writeHead(200, { ETag: etag, "Content-Length": data.length });
    res.end(data);
  }
}

describe("resolveModelFolder", () => {
  const hub = new FakeHub();
  const SHA = "0123456789abcdef0123456789abcdef01234567";
  let cache: string;
  let modelDir: string;
  beforeAll(async () => {
    await hub.start();
    modelDir = join(work, "hub-src");
    await writeHfModelFolder(modelDir, {
      config: TINY_QWEN3,
      weights: seededWeights(TINY_QWEN3, 7),
      tokenizerDir: tokDir,
    });
    const files = new Map<string, Uint8Array>();
    for (const f of await readdir(modelDir))
      files.set(f, new Uint8Array(await readFile(join(modelDir, f))));
    files.set("README.md", new TextEncoder().encode("# tiny"));
    files.set("pytorch_model.bin", new Uint8Array(100));
    hub.repos.set("acme/tiny", { sha: SHA, files });
  });
  afterAll(async () => {
    await hub.stop();
  });
  beforeEach(async () => {
    cache = await mkdtemp(join(work, "hfcache-"));
    hub.requests = [];
    vi.spyOn(console, "debug").mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("returns existing local folders as they are", async () => {
    expect(await resolveModelFolder(modelDir)).toBe(modelDir);
    await expect(resolveModelFolder("./definitely/not/here")).rejects.toThrow(
      /model folder not found/,
    );
    await expect(resolveModelFolder("not a repo id", { offline: true })).rejects.toThrow(
      /neither an existing folder nor a Hugging Face repo id/,
    );
  });

  it("finds snapshots in the hub cache layout through refs/main, a branch ref, or a commit", async () => {
    const repoDir = join(cache, "models--acme--tiny");
    const snap = join(repoDir, "snapshots", SHA);
    await mkdir(join(repoDir, "refs"), { recursive: true });
    await mkdir(snap, { recursive: true });
    for (const f of await readdir(modelDir))
      await writeFile(join(snap, f), await readFile(join(modelDir, f)));
    await writeFile(join(repoDir, "refs", "main"), `${SHA}\n`);
    await writeFile(join(repoDir, "refs", "dev"), SHA);
    expect(await resolveModelFolder("acme/tiny", { cacheDir: cache, offline: true })).toBe(snap);
    expect(
      await resolveModelFolder("acme/tiny", { cacheDir: cache, offline: true, revision: "dev" }),
    ).toBe(snap);
    expect(
      await resolveModelFolder("acme/tiny", { cacheDir: cache, offline: true, revision: SHA }),
    ).toBe(snap);
    await expect(
      resolveModelFolder("acme/tiny", { cacheDir: cache, offline: true, revision: "v2" }),
    ).rejects.toThrow(ModelNotAvailableError);
    // An incomplete snapshot is not used.
    await rm(join(snap, "model.safetensors"));
    await expect(
      resolveModelFolder("acme/tiny", { cacheDir: cache, offline: true }),
    ).rejects.toThrow(/lacks model\.safetensors/);
    await expect(
      resolveModelFolder("acme/tiny", { cacheDir: cache, revision: "../../etc" }),
    ).rejects.toThrow(/revision "\.\.\/\.\.\/etc" is not a valid branch/);
    expect(hub.requests).toEqual([]);
  });

  it("downloads config, tokenizer and safetensors into the cache layout, then works offline", async () => {
    const dir = await resolveModelFolder("acme/tiny", { cacheDir: cache, hubUrl: hub.url });
    expect(dir).toBe(join(cache, "models--acme--tiny", "snapshots", SHA));
    expect((await readFile(join(cache, "models--acme--tiny", "refs", "main"), "utf8")).trim()).toBe(
      SHA,
    );
    const files = (await readdir(dir)).sort();
    expect(files).toEqual([
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
    expect((await lstat(join(dir, "model.safetensors"))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(dir, "model.safetensors"))).toMatch(/^\.\.\/\.\.\/blobs\//);
    expect(
      hub.requests.some((r) => r.includes("pytorch_model.bin") || r.includes("README.md")),
    ).toBe(false);
    const loaded = await loadHfModelFolder(dir);
    const src = await readSafetensors(join(modelDir, "model.safetensors"));
    expect(loaded.weights.get("model.embed_tokens.weight")?.data).toEqual(
      src.get("model.embed_tokens.weight")?.data,
    );

    const before = hub.requests.length;
    process.env.HF_HUB_OFFLINE = "1";
    try {
      expect(await resolveModelFolder("acme/tiny", { cacheDir: cache, hubUrl: hub.url })).toBe(dir);
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    expect(await resolveModelFolder("acme/tiny", { cacheDir: cache, hubUrl: hub.url })).toBe(dir);
    expect(hub.requests.length).toBe(before);
  });

  it("downloads exactly the shards the index names, skipping other weight formats", async () => {
    const SHA2 = "fedcba9876543210fedcba9876543210fedcba98";
    const src = join(work, "hub-sharded");
    await writeHfModelFolder(src, {
      config: TINY_QWEN3,
      weights: seededWeights(TINY_QWEN3, 3),
      tokenizerDir: tokDir,
      maxShardBytes: 8000,
    });
    const files = new Map<string, Uint8Array>();
    for (const f of await readdir(src)) files.set(f, new Uint8Array(await readFile(join(src, f))));
    const shards = [...files.keys()].filter((f) => f.startsWith("model-"));
    expect(shards.length).toBeGreaterThan(1);
    files.set("consolidated.safetensors", new Uint8Array(64));
    files.set("original/params.json", new TextEncoder().encode("{}"));
    hub.repos.set("acme/sharded", { sha: SHA2, files });
    const dir = await resolveModelFolder("acme/sharded", { cacheDir: cache, hubUrl: hub.url });
    expect((await readdir(dir)).sort()).toEqual(
      [
        "config.json",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
        ...shards,
      ].sort(),
    );
    expect(hub.requests.some((r) => r.includes("consolidated") || r.includes("original"))).toBe(
      false,
    );
    const loaded = await loadHfModelFolder(dir);
    expect(loaded.weights.size).toBe(hfWeightShapes(TINY_QWEN3).size);
  });

  it("downloads only tokenizer files when asked", async () => {
    const dir = await resolveModelFolder("acme/tiny", {
      cacheDir: cache,
      hubUrl: hub.url,
      files: "tokenizer",
    });
    expect((await readdir(dir)).sort()).toEqual([
      "config.json",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
  });

  it("offline mode never touches the network and says how to get the files", async () => {
    process.env.HF_HUB_OFFLINE = "1";
    let err: unknown;
    try {
      err = await resolveModelFolder("acme/tiny", { cacheDir: cache, hubUrl: hub.url }).catch(
        (e: unknown) => e,
      );
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    expect(err).toBeInstanceOf(ModelNotAvailableError);
    expect(err).toBeInstanceOf(TinkerValidationError);
    expect((err as TinkerValidationError).field).toBe("base_model");
    expect((err as Error).message).toMatch(
      /not in the Hugging Face cache .*models--acme--tiny.*offline mode is on/,
    );
    expect((err as Error).message).toMatch(/huggingface-cli download acme\/tiny/);
    expect(hub.requests).toEqual([]);
  });

  it("reports a repo the hub does not have", async () => {
    const err = await resolveModelFolder("acme/missing", {
      cacheDir: cache,
      hubUrl: hub.url,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelNotAvailableError);
    expect((err as Error).message).toMatch(
      /acme\/missing: not in the cache .* downloading from http:\/\/127\.0\.0\.1:\d+ failed: Repository not found/,
    );
  });

  it("uses HF_HOME / HF_HUB_CACHE like huggingface_hub", () => {
    expect(hfHubCacheDir({ HF_HUB_CACHE: "/c", HF_HOME: "/h" })).toBe("/c");
    expect(hfHubCacheDir({ HF_HOME: "/h" })).toBe(join("/h", "hub"));
    expect(hfHubCacheDir({ XDG_CACHE_HOME: "/x" })).toBe(join("/x", "huggingface", "hub"));
  });
});

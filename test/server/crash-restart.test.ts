/**
 * Kill the server with SIGKILL mid-run (a child process), start it again on the same data dir:
 * saved checkpoints are listed and load, and training continues from them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Raw, tempDir } from "./helpers.js";

const CHILD = fileURLToPath(new URL("./fixtures/child-server.ts", import.meta.url));

async function spawnServer(dataDir: string): Promise<{ child: ChildProcess; api: Raw }> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, dataDir], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const line = buf.split("\n")[0];
      if (buf.includes("\n") && line) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once("exit", (code) => reject(new Error(`child server exited with ${code}`)));
  });
  return { child, api: new Raw(url) };
}

function kill9(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

const datum = {
  model_input: { chunks: [{ tokens: [10, 20, 30, 40], type: "encoded_text" }] },
  loss_fn_inputs: {
    target_tokens: { data: [20, 30, 40, 50], dtype: "int64", shape: [4] },
    weights: { data: [1, 1, 1, 1], dtype: "float32", shape: [4] },
  },
};
const fb = (modelId: string, seqId: number, forward = false) =>
  forward
    ? {
        forward_input: { data: [datum], loss_fn: "cross_entropy" },
        model_id: modelId,
        seq_id: seqId,
      }
    : {
        forward_backward_input: { data: [datum], loss_fn: "cross_entropy" },
        model_id: modelId,
        seq_id: seqId,
      };
const optim = (modelId: string, seqId: number) => ({
  adam_params: { learning_rate: 0.01 },
  model_id: modelId,
  seq_id: seqId,
  type: "optim_step",
});

const model = "tiny-bytes";

describe("SIGKILL and restart (real engine)", () => {
  it("keeps saved checkpoints loadable and training continues", async () => {
    const tmp = await tempDir("server-crash");
    try {
      const first = await spawnServer(tmp.dir);
      const a1 = first.api;
      const sid = String(
        (await a1.post("/api/v1/create_session", { tags: [], user_metadata: {} })).json.session_id,
      );
      const modelId = await a1.createModel(sid, 0, model, { rank: 4, seed: 7 });
      let seq = 1;
      for (let step = 0; step < 2; step++) {
        await a1.run("/api/v1/forward_backward", fb(modelId, seq++));
        await a1.run("/api/v1/optim_step", optim(modelId, seq++));
      }
      const lossAtSave = (await a1.run("/api/v1/forward", fb(modelId, seq++, true))).json
        .metrics as Record<string, number>;
      const saved = await a1.run("/api/v1/save_weights", {
        model_id: modelId,
        path: "before-crash",
        seq_id: seq++,
      });
      const path = String(saved.json.path);
      // more work in flight when the process dies
      await a1.post("/api/v1/forward_backward", fb(modelId, seq++));
      await a1.post("/api/v1/optim_step", optim(modelId, seq++));
      await a1.post("/api/v1/save_weights", {
        model_id: modelId,
        path: "maybe-half-written",
        seq_id: seq++,
      });
      await kill9(first.child);

      const second = await spawnServer(tmp.dir);
      try {
        const a2 = second.api;
        const list = await a2.get(`/api/v1/training_runs/${modelId}/checkpoints`);
        const ids = (list.json.checkpoints as Array<{ checkpoint_id: string }>).map(
          (c) => c.checkpoint_id,
        );
        expect(ids).toContain("weights/before-crash");
        // no temp debris is ever listed, whatever the kill interrupted
        expect(ids.every((id) => /^weights\/(before-crash|maybe-half-written)$/.test(id))).toBe(
          true,
        );

        const sid2 = String(
          (await a2.post("/api/v1/create_session", { tags: [], user_metadata: {} })).json
            .session_id,
        );
        const loaded = await a2.run("/api/v1/load_weights", {
          session_id: sid2,
          model_seq_id: 0,
          path,
          optimizer: true,
          type: "load_weights",
        });
        const restored = String(loaded.json.model_id);
        expect(restored).toBe(`${sid2}:train:0`);
        const lossAfter = (await a2.run("/api/v1/forward", fb(restored, 1, true))).json
          .metrics as Record<string, number>;
        expect(lossAfter["loss:sum"]).toBeCloseTo(lossAtSave["loss:sum"]!, 5);
        await a2.run("/api/v1/forward_backward", fb(restored, 2));
        const step = await a2.run("/api/v1/optim_step", optim(restored, 3));
        expect(step.json.error).toBeUndefined();
        const lossNext = (await a2.run("/api/v1/forward", fb(restored, 4, true))).json
          .metrics as Record<string, number>;
        expect(lossNext["loss:sum"]).not.toBe(lossAfter["loss:sum"]);
        const runDir = (await readdir(join(tmp.dir, "runs"))).length;
        expect(runDir).toBe(2);
      } finally {
        await kill9(second.child);
      }
    } finally {
      await tmp.cleanup();
    }
  });
});

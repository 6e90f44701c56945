"""PyTorch (CPU, eager) twin of the local engine's model, for bench/engine-model/run.ts.

Reads the base weights and LoRA factors the TS bench wrote (raw float32 files + manifest.json), so
both sides run the identical model, then times a LoRA training step (forward, cross-entropy sum,
backward, AdamW) and KV-cache sampling. Prints one JSON line.
"""
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def main():
    d = sys.argv[1]
    man = json.load(open(f"{d}/manifest.json"))
    c = man["config"]
    t = {}
    for i, (name, shape) in enumerate(man["tensors"]):
        t[name] = torch.from_numpy(np.fromfile(f"{d}/{i}.bin", dtype=np.float32).reshape(shape))
    L, H, KV, hd = c["numLayers"], c["numHeads"], c["numKvHeads"], c["headDim"]
    eps, theta = c["rmsNormEps"], c["ropeTheta"]
    scale = man["loraScale"]
    lora = {}
    for name, ten in t.items():
        if ".lora_" in name:
            p = ten.clone().requires_grad_(True)
            lora[name] = p
    params = list(lora.values())

    def lin(x, mod, w):
        y = x @ w.t()
        a = lora.get(f"base_model.model.{mod}.lora_A.weight")
        if a is not None:
            b = lora[f"base_model.model.{mod}.lora_B.weight"]
            y = y + scale * ((x @ a.t()) @ b.t())
        return y

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))

    def rope(x, pos):  # x [B, h, T, hd]
        ang = pos.to(torch.float64)[:, None] * inv[None, :]
        cos = torch.cat([ang.cos(), ang.cos()], -1).float()
        sin = torch.cat([ang.sin(), ang.sin()], -1).float()
        x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    lm = t.get("lm_head.weight", t["model.embed_tokens.weight"])

    def forward(tokens, cache=None, start=0):
        B, T = tokens.shape
        x = t["model.embed_tokens.weight"][tokens]
        pos = torch.arange(start, start + T)
        for l in range(L):
            p = f"model.layers.{l}"
            h = rms(x, t[f"{p}.input_layernorm.weight"])
            q = lin(h, f"{p}.self_attn.q_proj", t[f"{p}.self_attn.q_proj.weight"]).view(B, T, H, hd)
            k = lin(h, f"{p}.self_attn.k_proj", t[f"{p}.self_attn.k_proj.weight"]).view(B, T, KV, hd)
            v = lin(h, f"{p}.self_attn.v_proj", t[f"{p}.self_attn.v_proj.weight"]).view(B, T, KV, hd)
            if c["qkNorm"]:
                q = rms(q, t[f"{p}.self_attn.q_norm.weight"])
                k = rms(k, t[f"{p}.self_attn.k_norm.weight"])
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            q, k = rope(q, pos), rope(k, pos)
            if cache is not None:
                if cache[l] is not None:
                    k = torch.cat([cache[l][0], k], 2)
                    v = torch.cat([cache[l][1], v], 2)
                cache[l] = (k, v)
            k = k.repeat_interleave(H // KV, 1)
            v = v.repeat_interleave(H // KV, 1)
            s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            S = k.shape[2]
            mask = torch.ones(T, S, dtype=torch.bool).tril(S - T)
            s = s.masked_fill(~mask, float("-inf"))
            o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * hd)
            x = x + lin(o, f"{p}.self_attn.o_proj", t[f"{p}.self_attn.o_proj.weight"])
            h2 = rms(x, t[f"{p}.post_attention_layernorm.weight"])
            g = lin(h2, f"{p}.mlp.gate_proj", t[f"{p}.mlp.gate_proj.weight"])
            u = lin(h2, f"{p}.mlp.up_proj", t[f"{p}.mlp.up_proj.weight"])
            x = x + lin(F.silu(g) * u, f"{p}.mlp.down_proj", t[f"{p}.mlp.down_proj.weight"])
        x = rms(x, t["model.norm.weight"])
        return lin(x, "lm_head", lm)

    tokens = torch.from_numpy(np.array(man["tokens"], dtype=np.int64))
    targets = torch.from_numpy(np.array(man["targets"], dtype=np.int64))
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), eps=1e-12, weight_decay=0.0)
    losses, times = [], []
    for it in range(man["steps"] + 1):
        t0 = time.perf_counter()
        logits = forward(tokens)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    fb = sorted(times[1:])[len(times[1:]) // 2]

    prompt = torch.from_numpy(np.array(man["prompt"], dtype=np.int64))[None, :].repeat(man["numSamples"], 1)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        t0 = time.perf_counter()
        cache = [None] * L
        logits = forward(prompt, cache, 0)[:, -1]
        n = 0
        for i in range(man["maxTokens"]):
            tok = torch.multinomial(logits.softmax(-1), 1, generator=gen)
            n += tok.shape[0]
            logits = forward(tok, cache, prompt.shape[1] + i)[:, -1]
        sample_s = time.perf_counter() - t0
    ntok = tokens.numel()
    print(json.dumps({"firstLoss": losses[0], "fbTokPerS": ntok / fb, "sampleTokPerS": n / sample_s, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()

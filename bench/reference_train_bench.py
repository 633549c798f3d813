#!/usr/bin/env python3
"""PyTorch eager reference for bench_train.

LM mode: the same GPT-2-style training step (forward, cross-entropy, backward, grad-norm clipping
at 1.0, AdamW with decay on matrices only) on random tokens, timed after a warm-up.

SAE mode (--sae-layer L): per step, the model runs (no grad) on enough random windows for
--sae-batch activations at blocks.L.hook_resid_post, then one TopK SAE step (encode, top-k,
decode, squared error, backward, Adam, decoder rows renormalised), as circuitscope's train-sae.

Prints {"tok_s": ..., "torch": ...}.

  reference_train_bench.py --layers 4 --d-model 128 --heads 4 --ctx 128 --vocab 2048 --batch 32 --steps 20 --threads 2
  reference_train_bench.py ... --sae-layer 3 --d-sae 2048 --k 16 --sae-batch 4096
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, mask):
        B, T, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (t.view(B, T, self.h, d // self.h).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.h)
        att = att.masked_fill(mask[:T, :T], float("-inf")).softmax(-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(B, T, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt2(nn.Module):
    def __init__(self, layers, d, h, ctx, vocab):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, h) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.register_buffer("mask", torch.ones(ctx, ctx, dtype=torch.bool).triu(1))

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for b in self.blocks:
            x = b(x, self.mask)
        return self.ln_f(x) @ self.wte.weight.t()

    def resid_post(self, ids, layer):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for b in self.blocks[: layer + 1]:
            x = b(x, self.mask)
        return x


def sae_bench(a):
    m = Gpt2(a.layers, a.d_model, a.heads, a.ctx, a.vocab)
    d = a.d_model
    w_dec = torch.randn(a.d_sae, d)
    w_dec = (w_dec / w_dec.norm(dim=-1, keepdim=True)).requires_grad_()
    w_enc = w_dec.detach().t().clone().requires_grad_()
    b_enc = torch.zeros(a.d_sae, requires_grad=True)
    b_dec = torch.zeros(d, requires_grad=True)
    opt = torch.optim.Adam([w_enc, w_dec, b_enc, b_dec], lr=1e-3)
    windows = -(-a.sae_batch // a.ctx)

    def step():
        with torch.no_grad():
            ids = torch.randint(a.vocab, (windows, a.ctx))
            x = m.resid_post(ids, a.sae_layer).reshape(-1, d)[: a.sae_batch]
        pre = (x - b_dec) @ w_enc + b_enc
        val, idx = pre.topk(a.k, dim=-1)
        f = torch.zeros_like(pre).scatter(-1, idx, val.relu())
        recon = f @ w_dec + b_dec
        loss = (recon - x).pow(2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            w_dec.div_(w_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8))
        return loss.item()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    return a.steps * a.sae_batch / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser()
    for name, default in (("layers", 4), ("d-model", 128), ("heads", 4), ("ctx", 128), ("vocab", 2048),
                          ("batch", 32), ("steps", 20), ("threads", 2), ("sae-layer", -1), ("d-sae", 2048),
                          ("k", 16), ("sae-batch", 4096)):
        p.add_argument("--" + name, type=int, default=default)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.sae_layer >= 0:
        print(json.dumps({"tok_s": sae_bench(a), "torch": torch.__version__}))
        return
    m = Gpt2(a.layers, a.d_model, a.heads, a.ctx, a.vocab)
    decay = [p for n, p in m.named_parameters() if p.dim() == 2 and "wte" not in n and "wpe" not in n]
    rest = [p for n, p in m.named_parameters() if not (p.dim() == 2 and "wte" not in n and "wpe" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=3e-3, betas=(0.9, 0.95))

    def step(batch):
        logits = m(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(3):
        step(torch.randint(a.vocab, (a.batch, a.ctx + 1)))
    batches = [torch.randint(a.vocab, (a.batch, a.ctx + 1)) for _ in range(a.steps)]
    t0 = time.perf_counter()
    for b in batches:
        step(b)
    dt = time.perf_counter() - t0
    print(json.dumps({"tok_s": a.steps * a.batch * a.ctx / dt, "torch": torch.__version__}))


if __name__ == "__main__":
    main()

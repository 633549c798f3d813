#!/usr/bin/env python3
"""Independent float64 reference for attention-edge decomposition (issue 17, attention in the graph).

  ref_attention_decomp.py --model DIR --transcoders P0 P1 ... --tokens 1,2,3 --edge L,H,Q,K [--edge ...]
                          --out FILE.json [--pairs 200]

For each edge (layer L, query head H, query position Q, key position K <= Q), FILE.json holds
  {"layer", "head", "query", "key", "scale", "score" (the clean forward's blocks.L.attn.hook_attn_scores),
   "pattern", "pair_sum", "query_nodes_key_bias", "query_bias_key_nodes", "bias_bias",
   "nodes": [{"node_id", "kind", "layer", "ctx_idx", "feature", "query_value", "key_value"}],
   "top_pairs": [[query node_id, key node_id, value], ...]  (the --pairs largest by |value|)}
and "checks" (the run exits 1 when a self-check fails).

Written from the definition, not from the C++ code. The local replacement model: attention patterns
and every norm's scale are constants from the clean forward, each MLP output is its transcoder's
feature writes (activation x W_dec row) + b_dec + an error constant (true MLP output - transcoder
output). The residual entering block L is then affine in the node writes. Each node is propagated
on its own, explicitly: one pass of the frozen model up to block L with only that node's write in
the residual stream and every bias (norm biases, attention biases, b_dec) off, then block L's
frozen LN1 (no bias), W_Q or W_K (no bias) and RoPE where the model has it give the node's part
Q_n of the query vector and K_n of the key vector. The constant Q_bias, K_bias is one pass with no
node writes and the biases on. With scale = 1/sqrt(d_head):
  query_value(n) = Q_n . K * scale,  key_value(m) = Q . K_m * scale,  pair(n, m) = Q_n . K_m * scale,
  score = sum of pairs + (sum Q_n) . K_bias * scale + Q_bias . (sum K_m) * scale + Q_bias . K_bias * scale.
Nodes: embeddings, features and error nodes of layers < L at positions <= Q (key values only at
positions <= K; null beyond).

Self-checks: frozen_vs_clean (every node and the biases on reproduce the clean residual entering
block L, and its q and k); identity (sum of node parts + constant = the clean q and k, and the
score from them = the clean hook's score). threshold_margin (smallest |pre-activation - threshold|)
tells the caller how stable the feature set is against float32.
"""
import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_sae  # noqa: E402
import ref_transformer as rt  # noqa: E402
import st_io  # noqa: E402

DT = torch.float64


class Transcoder:
    """A SAELens jumprelu_transcoder folder reading blocks.L.ln2.hook_normalized, writing blocks.L.hook_mlp_out."""

    def __init__(self, folder, layer):
        with open(os.path.join(folder, "cfg.json")) as f:
            cfg = json.load(f)
        meta = cfg.get("metadata") or {}
        if cfg.get("architecture") != "jumprelu_transcoder" or cfg.get("normalize_activations", "none") != "none":
            raise SystemExit(f"{folder}: the reference handles unnormalised jumprelu_transcoder only")
        want = (f"blocks.{layer}.ln2.hook_normalized", f"blocks.{layer}.hook_mlp_out")
        if (meta.get("hook_name"), meta.get("hook_name_out")) != want:
            raise SystemExit(f"{folder}: expected {want[0]} -> {want[1]}")
        self.encode, self.reconstruct, _ = ref_sae.load_saelens(folder)
        w = st_io.read_safetensors(os.path.join(folder, "sae_weights.safetensors"))
        self.W_enc, self.b_enc, self.threshold = w["W_enc"].to(DT), w["b_enc"].to(DT), w["threshold"].to(DT)
        self.W_dec, self.b_dec = w["W_dec"].to(DT), w["b_dec"].to(DT)


class Frozen:
    """The clean run's constants and the weights, with the frozen model's pieces as methods."""

    def __init__(self, model, tcs, tokens):
        self.model, self.tcs = model, tcs
        c = model.cfg
        self.gpt2 = c["arch"] == "gpt2"
        self.T, self.d = len(tokens), c["d_model"]
        self.H, self.Hkv, self.dh = c["n_heads"], c["n_kv_heads"], c["d_head"]
        names = ["blocks.0.hook_resid_pre"]
        for L in range(c["n_layers"]):
            b = f"blocks.{L}."
            names += [b + n for n in ("hook_resid_pre", "ln1.hook_scale", "attn.hook_pattern", "attn.hook_attn_scores",
                                      "ln2.hook_normalized", "hook_mlp_out")]
            names += [b + ("attn.hook_q" if self.gpt2 else "attn.hook_rot_q"),
                      b + ("attn.hook_k" if self.gpt2 else "attn.hook_rot_k")]
        self.cache = {}

        def saver(name):
            def fn(t):
                self.cache[name] = t.detach().clone()[0]
            return fn

        with torch.no_grad():
            rt.forward(model, torch.tensor([tokens]), [(n, saver(n)) for n in names])
        if not self.gpt2:
            self.cos, self.sin = rt.rope_tables(self.T, self.dh, c["rope_theta"])

    def w(self, name):
        return self.model.w[name]

    def ln1(self, L, x, bias):
        scale = self.cache[f"blocks.{L}.ln1.hook_scale"]  # [T, 1], a constant
        if self.gpt2:
            y = (x - x.mean(dim=-1, keepdim=True)) / scale * self.w(f"h.{L}.ln_1.weight")
            return y + self.w(f"h.{L}.ln_1.bias") if bias else y
        return x / scale * self.w(f"layers.{L}.input_layernorm.weight")

    def project(self, L, h, which, bias):
        """h [T, d] -> q, k or v [T, heads * dh] (no bias unless asked)."""
        if self.gpt2:
            i = "qkv".index(which)
            W = self.w(f"h.{L}.attn.c_attn.weight")[:, i * self.d:(i + 1) * self.d]
            b = self.w(f"h.{L}.attn.c_attn.bias")[i * self.d:(i + 1) * self.d]
            return h @ W + b if bias else h @ W
        W = self.w(f"layers.{L}.self_attn.{which}_proj.weight").T
        b = self.model.w.get(f"layers.{L}.self_attn.{which}_proj.bias")
        return h @ W + b if (bias and b is not None) else h @ W

    def attn_out(self, L, x, bias):
        v = self.project(L, self.ln1(L, x, bias), "v", bias).reshape(self.T, self.Hkv, self.dh)
        v = v[:, torch.arange(self.H) // (self.H // self.Hkv), :]  # each query head's kv head
        pattern = self.cache[f"blocks.{L}.attn.hook_pattern"]  # [H, Tq, Tk], a constant
        z = torch.einsum("hqk,khd->qhd", pattern, v).reshape(self.T, self.H * self.dh)
        if self.gpt2:
            W, b = self.w(f"h.{L}.attn.c_proj.weight"), self.w(f"h.{L}.attn.c_proj.bias")
        else:
            W, b = self.w(f"layers.{L}.self_attn.o_proj.weight").T, self.model.w.get(f"layers.{L}.self_attn.o_proj.bias")
        return z @ W + b if (bias and b is not None) else z @ W

    def resid_entering(self, layer, embed_write, mlp_writes, bias):
        """The frozen model's residual entering block `layer`: embed_write [T, d] at block 0,
        mlp_writes {l: [T, d]} added at each MLP output, plus b_dec when bias."""
        x = embed_write
        for L in range(layer):
            x = x + self.attn_out(L, x, bias)
            if L in mlp_writes:
                x = x + mlp_writes[L]
            if bias:
                x = x + self.tcs[L].b_dec
        return x

    def query_key(self, L, x, head, qpos, kpos, bias):
        """Block L's query vector of `head` at qpos and its key vector at kpos (after RoPE)."""
        h = self.ln1(L, x, bias)
        q = self.project(L, h, "q", bias).reshape(1, self.T, self.H, self.dh)
        k = self.project(L, h, "k", bias).reshape(1, self.T, self.Hkv, self.dh)
        if not self.gpt2:
            q, k = rt.apply_rope(q, self.cos, self.sin), rt.apply_rope(k, self.cos, self.sin)
        return q[0, qpos, head], k[0, kpos, head // (self.H // self.Hkv)]


def relative(a, b):
    return float((a - b).abs().max()) / max(1.0, float(b.abs().max()))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--transcoders", nargs="+", required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--edge", action="append", required=True, help="L,H,Q,K")
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(1)

    model = rt.load_model(a.model)
    nL = model.cfg["n_layers"]
    if len(a.transcoders) != nL:
        raise SystemExit(f"give one transcoder per layer ({nL})")
    tcs = [Transcoder(path, L) for L, path in enumerate(a.transcoders)]
    tokens = [int(s) for s in a.tokens.split(",")]
    fz = Frozen(model, tcs, tokens)
    T = fz.T

    # Feature activations and error vectors from the clean run.
    acts, errs, threshold_margin = [], [], float("inf")
    for L, tc in enumerate(tcs):
        xin = fz.cache[f"blocks.{L}.ln2.hook_normalized"]
        f = tc.encode(xin)
        threshold_margin = min(threshold_margin, float((xin @ tc.W_enc + tc.b_enc - tc.threshold).abs().min()))
        acts.append(f)
        errs.append(fz.cache[f"blocks.{L}.hook_mlp_out"] - tc.reconstruct(xin, f))
    embed = fz.cache["blocks.0.hook_resid_pre"]
    zero = torch.zeros(T, fz.d, dtype=DT)

    # Every node with the write it alone puts into the residual stream.
    nodes = []  # (json record, embed_write, {layer: write})
    for pos in range(T):
        e = zero.clone()
        e[pos] = embed[pos]
        nodes.append(({"node_id": f"E_{tokens[pos]}_{pos}", "kind": "embedding", "layer": -1, "ctx_idx": pos,
                       "feature": -1}, e, {}))
    for L in range(nL):
        for pos in range(T):
            for i in torch.nonzero(acts[L][pos] > 0).flatten().tolist():
                m = zero.clone()
                m[pos] = acts[L][pos, i] * tcs[L].W_dec[i]
                nodes.append(({"node_id": f"{L}_{i}_{pos}", "kind": "feature", "layer": L, "ctx_idx": pos,
                               "feature": i}, zero, {L: m}))
        for pos in range(T):
            m = zero.clone()
            m[pos] = errs[L][pos]
            nodes.append(({"node_id": f"{L}_-1_{pos}", "kind": "error", "layer": L, "ctx_idx": pos, "feature": -1},
                          zero, {L: m}))

    frozen_err = identity_err = 0.0
    results = []
    for spec in a.edge:
        L, head, qpos, kpos = (int(s) for s in spec.split(","))
        if not (0 <= kpos <= qpos < T):
            raise SystemExit(f"edge {spec}: need 0 <= key <= query < {T}")
        scale = 1.0 / math.sqrt(fz.dh)
        clean_q = fz.cache[f"blocks.{L}." + ("attn.hook_q" if fz.gpt2 else "attn.hook_rot_q")][qpos, head]
        clean_k = fz.cache[f"blocks.{L}." + ("attn.hook_k" if fz.gpt2 else "attn.hook_rot_k")][kpos, head // (fz.H // fz.Hkv)]
        clean_score = float(fz.cache[f"blocks.{L}.attn.hook_attn_scores"][head, qpos, kpos])

        # The frozen model with every node and the biases reproduces the clean run.
        full_mlp = {l: acts[l] @ tcs[l].W_dec + errs[l] for l in range(L)}
        x = fz.resid_entering(L, embed, full_mlp, True)
        frozen_err = max(frozen_err, relative(x, fz.cache[f"blocks.{L}.hook_resid_pre"]))
        fq, fk = fz.query_key(L, x, head, qpos, kpos, True)
        frozen_err = max(frozen_err, relative(fq, clean_q), relative(fk, clean_k))

        upstream = [n for n in nodes if n[0]["ctx_idx"] <= qpos and n[0]["layer"] < L]
        parts_q, parts_k = [], []
        for _, e, m in upstream:
            qn, kn = fz.query_key(L, fz.resid_entering(L, e, m, False), head, qpos, kpos, False)
            parts_q.append(qn)
            parts_k.append(kn)
        Qn, Kn = torch.stack(parts_q), torch.stack(parts_k)  # [n, dh]
        q_bias, k_bias = fz.query_key(L, fz.resid_entering(L, zero, {}, True), head, qpos, kpos, True)
        Q, K = Qn.sum(0) + q_bias, Kn.sum(0) + k_bias
        identity_err = max(identity_err, relative(Q, clean_q), relative(K, clean_k),
                           abs(float(Q @ K) * scale - clean_score) / max(1.0, abs(clean_score)))

        records = []
        qv, kv = Qn @ K * scale, Kn @ Q * scale
        for j, (rec, _, _) in enumerate(upstream):
            r = dict(rec)
            r["query_value"] = float(qv[j])
            r["key_value"] = float(kv[j]) if rec["ctx_idx"] <= kpos else None
            records.append(r)
        key_rows = [j for j, n in enumerate(upstream) if n[0]["ctx_idx"] <= kpos]
        pairs = Qn @ Kn[key_rows].T * scale  # [n, m]
        flat = pairs.flatten()
        order = torch.argsort(flat.abs(), descending=True)[:a.pairs].tolist()
        m = len(key_rows)
        top = [[upstream[i // m][0]["node_id"], upstream[key_rows[i % m]][0]["node_id"], float(flat[i])] for i in order]
        results.append({"layer": L, "head": head, "query": qpos, "key": kpos, "scale": scale, "score": clean_score,
                        "pattern": float(fz.cache[f"blocks.{L}.attn.hook_pattern"][head, qpos, kpos]),
                        "pair_sum": float(Qn.sum(0) @ Kn.sum(0)) * scale,
                        "query_nodes_key_bias": float(Qn.sum(0) @ k_bias) * scale,
                        "query_bias_key_nodes": float(q_bias @ Kn.sum(0)) * scale,
                        "bias_bias": float(q_bias @ k_bias) * scale,
                        "nodes": records, "top_pairs": top})

    checks = {"frozen_vs_clean": frozen_err, "identity": identity_err, "threshold_margin": threshold_margin}
    with open(a.out, "w") as f:
        json.dump({"edges": results, "checks": checks}, f)
    if not (frozen_err < 1e-9 and identity_err < 1e-9):
        print(f"ref_attention_decomp: self-check failed: {json.dumps(checks)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Independent float64 reference for attribution graphs (`circuitscope attribute`, issue 17).

  ref_attribution.py transcoders --model DIR --out DIR [--seed 0] [--d-sae 48]
      Writes one random SAELens jumprelu_transcoder folder per layer, DIR/layer_L, reading
      blocks.L.ln2.hook_normalized and writing blocks.L.hook_mlp_out; prints their paths as a JSON list.

  ref_attribution.py graph --model DIR --transcoders P0 P1 ... --tokens 1,2,3 --out FILE.json
                           [--target ID ...] [--max-logits 10] [--logit-probability 0.95]
      FILE.json: {"nodes": [{"node_id", "kind", "layer", "ctx_idx", "feature", "activation",
                             "token_prob"}],
                  "edges": [[source index, target index, weight], ...] (every non-zero one),
                  "checks": {...}}   (see below; the run fails when a self-check fails)

The local replacement model, written here from the method's definition and not from the C++ code:
attention patterns and every norm's 1/scale are constants taken from the clean forward (so the
network is affine in whatever is written into the residual stream); each MLP is replaced by its
transcoder's frozen feature writes (activation x W_dec row) plus b_dec plus an error constant
(true MLP output - transcoder output). Each node's write is multiplied by its own coefficient c
(1 in the clean run), so that the edge source -> target is d target / d c_source: the written
vector dotted with the target's gradient at the point where it is written.

Node values: a feature's target is its pre-activation without b_enc (W_enc column . ln2 output);
a logit node's value is logit - mean logit over the vocabulary, at the last position.

Self-checks (in "checks"; the run exits 1 if one fails):
  * frozen_vs_clean: the frozen model with every c = 1 reproduces the clean forward's logits and
    pre-activations (it is the same network, only with constants where gradients stop);
  * identity: every target's value = sum of its incoming edges + its value with every c = 0 (the
    part due to biases and other non-nodes). This holds only because the frozen model is affine in
    the c's; a forgotten stop-gradient breaks it.
And, for the caller to judge how stable the comparison is against float32:
  * threshold_margin: the smallest |pre-activation - threshold| (node sets may differ below it);
  * logit_margin: the smallest gap between consecutive sorted probabilities around the chosen
    logits, and between the cumulative probability and --logit-probability.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_sae  # noqa: E402
import ref_transformer as rt  # noqa: E402
import st_io  # noqa: E402

DT = torch.float64


# ------------------------------------------------------------------------------------ transcoders
def cmd_transcoders(a):
    model = rt.load_model(a.model)
    c = model.cfg
    draw = ref_sae.Draw(a.seed)
    paths = []
    for L in range(c["n_layers"]):
        folder = os.path.join(a.out, f"layer_{L}")
        ref_sae.write_saelens_v6(folder, "jumprelu_transcoder", f"blocks.{L}.ln2.hook_normalized", c["d_model"],
                                 a.d_sae, draw, hook_out=f"blocks.{L}.hook_mlp_out")
        # write_saelens_v6 always says layer 0; a loader that trusts hook_layer must see the right one.
        cfg_path = os.path.join(folder, "cfg.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg["metadata"]["hook_layer"] = L
        cfg["metadata"]["hook_layer_out"] = L
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=1)
        paths.append(folder)
    print(json.dumps(paths))
    return 0


class Transcoder:
    def __init__(self, folder, layer):
        with open(os.path.join(folder, "cfg.json")) as f:
            cfg = json.load(f)
        meta = cfg.get("metadata") or {}
        if cfg.get("architecture") != "jumprelu_transcoder":
            raise SystemExit(f"{folder}: the reference handles jumprelu_transcoder only")
        want_in, want_out = f"blocks.{layer}.ln2.hook_normalized", f"blocks.{layer}.hook_mlp_out"
        if meta.get("hook_name") != want_in or meta.get("hook_name_out") != want_out:
            raise SystemExit(f"{folder}: expected {want_in} -> {want_out}")
        self.encode, self.reconstruct, _ = ref_sae.load_saelens(folder)
        w = st_io.read_safetensors(os.path.join(folder, "sae_weights.safetensors"))
        self.W_enc, self.b_enc = w["W_enc"].to(DT), w["b_enc"].to(DT)
        self.W_dec, self.b_dec = w["W_dec"].to(DT), w["b_dec"].to(DT)
        self.threshold = w["threshold"].to(DT)


# ------------------------------------------------------------------------------------ clean run
def clean_run(model, tokens):
    """Logits and every constant the frozen model needs, from ref_transformer's own forward."""
    c = model.cfg
    names = ["blocks.0.hook_resid_pre", "ln_final.hook_scale"]
    for L in range(c["n_layers"]):
        b = f"blocks.{L}."
        names += [b + "ln1.hook_scale", b + "ln2.hook_scale", b + "attn.hook_pattern", b + "ln2.hook_normalized",
                  b + "hook_mlp_out"]
    cache = {}

    def saver(name):
        def fn(t):
            cache[name] = t.detach().clone()[0]
        return fn

    with torch.no_grad():
        logits = rt.forward(model, torch.tensor([tokens]), [(n, saver(n)) for n in names])[0]
    return logits, cache


# ----------------------------------------------------------------------------------- frozen model
def frozen_forward(model, cache, tcs, writes, coef):
    """The local replacement model. writes: {"emb": [T,d], "feat": [L] of [T,d_sae], "err": [L] of
    [T,d]}; coef: same layout but per node (emb [T], feat [L][T,d_sae], err [L][T]).
    Returns (per-layer ln2 outputs [T,d], final logits [T,V])."""
    c, w = model.cfg, model.w
    gpt2 = c["arch"] == "gpt2"
    H, Hkv, dh, d = c["n_heads"], c["n_kv_heads"], c["d_head"], c["d_model"]

    def norm(x, scale, weight, bias):
        # The scale is a constant from the clean run: that is the stop-gradient.
        if gpt2:
            return (x - x.mean(dim=-1, keepdim=True)) / scale * weight + bias
        return x / scale * weight

    x = coef["emb"][:, None] * writes["emb"]
    ln2_out = []
    for L in range(c["n_layers"]):
        b = f"blocks.{L}."
        if gpt2:
            p = f"h.{L}."
            h = norm(x, cache[b + "ln1.hook_scale"], w[p + "ln_1.weight"], w[p + "ln_1.bias"])
            v = h @ w[p + "attn.c_attn.weight"][:, 2 * d:] + w[p + "attn.c_attn.bias"][2 * d:]
        else:
            p = f"layers.{L}."
            h = norm(x, cache[b + "ln1.hook_scale"], w[p + "input_layernorm.weight"], None)
            v = h @ w[p + "self_attn.v_proj.weight"].T
        T = x.shape[0]
        v = v.reshape(T, Hkv, dh)[:, torch.arange(H) // (H // Hkv), :]  # [T, H, dh]
        pattern = cache[b + "attn.hook_pattern"]  # [H, Tq, Tk], a constant
        z = torch.einsum("hqk,khd->qhd", pattern, v).reshape(T, H * dh)
        if gpt2:
            x = x + z @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
            h2 = norm(x, cache[b + "ln2.hook_scale"], w[p + "ln_2.weight"], w[p + "ln_2.bias"])
        else:
            x = x + z @ w[p + "self_attn.o_proj.weight"].T
            h2 = norm(x, cache[b + "ln2.hook_scale"], w[p + "post_attention_layernorm.weight"], None)
        ln2_out.append(h2)
        tc = tcs[L]
        mlp = (coef["feat"][L] * writes["feat"][L]) @ tc.W_dec + tc.b_dec + coef["err"][L][:, None] * writes["err"][L]
        x = x + mlp
    if gpt2:
        hf = norm(x, cache["ln_final.hook_scale"], w["ln_f.weight"], w["ln_f.bias"])
    else:
        hf = norm(x, cache["ln_final.hook_scale"], w["norm.weight"], None)
    return ln2_out, hf @ w[model.unembed_name].T


def select_logits(probs, targets, max_logits, cum_p):
    if targets:
        return list(targets), None
    order = torch.argsort(probs, descending=True).tolist()
    chosen, total = [], 0.0
    for t in order:
        if len(chosen) >= max_logits or total >= cum_p:
            break
        chosen.append(t)
        total += float(probs[t])
    # How close the choice is to flipping: ranks near a tie, or the running sum near cum_p.
    k = len(chosen)
    sorted_p = probs[order]
    gaps = [float(sorted_p[i] - sorted_p[i + 1]) for i in range(max(0, k - 1), min(k, len(order) - 1))]
    running = torch.cumsum(sorted_p, 0)
    sums = [abs(float(running[i]) - cum_p) for i in range(min(k, len(order)))]
    return chosen, min(gaps + sums) if gaps + sums else None


def cmd_graph(a):
    torch.set_num_threads(1)
    model = rt.load_model(a.model)
    c = model.cfg
    nL = c["n_layers"]
    if len(a.transcoders) != nL:
        raise SystemExit(f"give one transcoder per layer ({nL})")
    tcs = [Transcoder(p, L) for L, p in enumerate(a.transcoders)]
    tokens = [int(s) for s in a.tokens.split(",")]
    T = len(tokens)

    logits, cache = clean_run(model, tokens)
    last = logits[-1]
    probs = torch.softmax(last, dim=-1)
    targets = [int(t) for t in a.target] if a.target else []
    logit_ids, logit_margin = select_logits(probs, targets, a.max_logits, a.logit_probability)

    # Feature activations through ref_sae's encoder, errors through its reconstruction.
    acts, pres, errs = [], [], []
    threshold_margin = float("inf")
    for L, tc in enumerate(tcs):
        xin = cache[f"blocks.{L}.ln2.hook_normalized"]
        f = tc.encode(xin)
        pre = xin @ tc.W_enc + tc.b_enc
        threshold_margin = min(threshold_margin, float((pre - tc.threshold).abs().min()))
        acts.append(f)
        pres.append(pre)
        errs.append(cache[f"blocks.{L}.hook_mlp_out"] - tc.reconstruct(xin, f))

    # Nodes, in circuit-tracer's order: features (layer, position, index), errors, embeddings, logits.
    nodes = []
    feat_nodes = []  # (L, pos, i)
    for L in range(nL):
        for pos in range(T):
            for i in torch.nonzero(acts[L][pos] > 0).flatten().tolist():
                nodes.append({"node_id": f"{L}_{i}_{pos}", "kind": "feature", "layer": str(L), "ctx_idx": pos,
                              "feature": i, "activation": float(acts[L][pos, i])})
                feat_nodes.append((L, pos, i))
    n_feat = len(nodes)
    for L in range(nL):
        for pos in range(T):
            nodes.append({"node_id": f"{L}_-1_{pos}", "kind": "error", "layer": str(L), "ctx_idx": pos,
                          "feature": -1, "activation": float(errs[L][pos].norm())})
    for pos in range(T):
        nodes.append({"node_id": f"E_{tokens[pos]}_{pos}", "kind": "embedding", "layer": "E", "ctx_idx": pos,
                      "feature": tokens[pos], "activation": 0.0})
    first_logit = len(nodes)
    mean_logit = float(last.mean())
    for t in logit_ids:
        nodes.append({"node_id": f"{nL + 1}_{t}_{T - 1}", "kind": "logit", "layer": str(nL + 1), "ctx_idx": T - 1,
                      "feature": t, "activation": float(last[t]) - mean_logit, "token_prob": float(probs[t])})

    writes = {"emb": cache["blocks.0.hook_resid_pre"], "feat": acts, "err": errs}

    def coefficients(value):
        return {"emb": torch.full([T], value, dtype=DT, requires_grad=True),
                "feat": [torch.full_like(acts[L], value).requires_grad_(True) for L in range(nL)],
                "err": [torch.full([T], value, dtype=DT, requires_grad=True) for _ in range(nL)]}

    def targets_of(ln2_out, out_logits):
        vals = []
        for (L, pos, i) in feat_nodes:
            vals.append(ln2_out[L][pos] @ tcs[L].W_enc[:, i])
        for t in logit_ids:
            vals.append(out_logits[-1, t] - out_logits[-1].mean())
        return vals

    coef = coefficients(1.0)
    ln2_out, out_logits = frozen_forward(model, cache, tcs, writes, coef)
    values = targets_of(ln2_out, out_logits)
    with torch.no_grad():
        zero = coefficients(0.0)
        base = [float(v) for v in targets_of(*frozen_forward(model, cache, tcs, writes, zero))]

    frozen_err = float((out_logits - logits).abs().max())
    for L in range(nL):
        frozen_err = max(frozen_err, float((ln2_out[L] @ tcs[L].W_enc + tcs[L].b_enc - pres[L]).abs().max()))

    # Sources in node order: features map to their (L, pos, i) coefficient, then errors, embeddings.
    leaves = [coef["feat"][L] for L in range(nL)] + coef["err"] + [coef["emb"]]
    edges = []
    identity_err = 0.0
    target_indices = list(range(n_feat)) + list(range(first_logit, len(nodes)))
    for k, (tgt, val) in enumerate(zip(target_indices, values)):
        grads = torch.autograd.grad(val, leaves, retain_graph=True, allow_unused=True)
        grads = [g if g is not None else torch.zeros_like(l) for g, l in zip(grads, leaves)]
        row_sum = 0.0
        for s, (L, pos, i) in enumerate(feat_nodes):
            wgt = float(grads[L][pos, i])
            if wgt != 0.0:
                edges.append([s, tgt, wgt])
                row_sum += wgt
        s = n_feat
        for L in range(nL):
            for pos in range(T):
                wgt = float(grads[nL + L][pos])
                if wgt != 0.0:
                    edges.append([s, tgt, wgt])
                    row_sum += wgt
                s += 1
        for pos in range(T):
            wgt = float(grads[2 * nL][pos])
            if wgt != 0.0:
                edges.append([s, tgt, wgt])
                row_sum += wgt
            s += 1
        identity_err = max(identity_err, abs(float(val) - (row_sum + base[k])) / max(1.0, abs(float(val))))
        # The value itself must be what the node reports.
        if tgt >= first_logit:
            identity_err = max(identity_err, abs(float(val) - nodes[tgt]["activation"]))

    checks = {"frozen_vs_clean": frozen_err, "identity": identity_err, "threshold_margin": threshold_margin,
              "logit_margin": logit_margin, "features_per_position": [
                  [int((acts[L][pos] > 0).sum()) for pos in range(T)] for L in range(nL)]}
    with open(a.out, "w") as f:
        json.dump({"nodes": nodes, "edges": edges, "checks": checks}, f)
    ok = frozen_err < 1e-9 and identity_err < 1e-9
    if not ok:
        print(f"ref_attribution: self-check failed: {json.dumps(checks)}", file=sys.stderr)
        return 1
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("transcoders")
    t.add_argument("--model", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--d-sae", type=int, default=48)
    g = sub.add_parser("graph")
    g.add_argument("--model", required=True)
    g.add_argument("--transcoders", nargs="+", required=True)
    g.add_argument("--tokens", required=True)
    g.add_argument("--target", nargs="*", default=[])
    g.add_argument("--max-logits", type=int, default=10)
    g.add_argument("--logit-probability", type=float, default=0.95)
    g.add_argument("--out", required=True)
    a = p.parse_args()
    return cmd_transcoders(a) if a.cmd == "transcoders" else cmd_graph(a)


if __name__ == "__main__":
    sys.exit(main())

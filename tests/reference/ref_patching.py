#!/usr/bin/env python3
"""Independent float64 reference for activation patching (docs/patching.md), no batching.

  ref_patching.py --job JOB.json --out OUT.json

JOB.json: {"model": DIR, "clean": [ids], "corrupted": [ids], "answer": id, "wrong": id,
           "cases": [{"site": "resid"|"attn"|"mlp"|"heads"|"heads-by-position"|"features",
                      "direction": "denoise"|"noise", "sae": SAELENS_FOLDER (features only)}]}
OUT.json: {"clean": {"logit-diff": m, "prob": m, "kl": 0}, "corrupted": {...},
           "cases": [{"site", "direction",
                      "grid": {metric: [[normalised value per column] per row]}   (not features)
                      "features": {str(feature): {metric: [normalised value per position]}}}]}

Every cell is its own forward pass of ref_transformer's float64 model over the target prompt (the
corrupted one for denoise, the clean one for noise) with one Python hook that copies the source
run's activation there, as a TransformerLens user would write it:
  resid: blocks.L.hook_resid_pre for each layer, then blocks.{n-1}.hook_resid_post; [pos]
  attn / mlp: blocks.L.hook_attn_out / hook_mlp_out; [pos]
  heads: blocks.L.attn.hook_z[:, :, head] at every position; heads-by-position: [pos, head]
  features: at the SAE's output hook, x[pos] += (f_src - f_dst)[pos, f] * W_dec[f], features
            encoded (ref_sae's SAELens maths) from the unpatched runs at the SAE's input hook;
            one cell per (feature, position) where the two runs' activations differ.
Metrics at the last position: logit-diff = logit[answer] - logit[wrong]; prob = softmax[answer];
kl = KL(P_clean || P_run). Normalised: (m - m_corrupted) / (m_clean - m_corrupted).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_sae  # noqa: E402
import ref_transformer as rt  # noqa: E402

METRICS = ("logit-diff", "prob", "kl")


def metrics(logits_last, answer, wrong, clean_logp):
    logp = torch.log_softmax(logits_last, dim=-1)
    return {"logit-diff": float(logits_last[answer] - logits_last[wrong]),
            "prob": float(logp[answer].exp()),
            "kl": float((clean_logp.exp() * (clean_logp - logp)).sum())}


def run_cached(model, ids):
    cache = {}

    def keep(name):
        def fn(x):
            cache[name] = x.detach().clone()
        return fn

    hooks = [(n, keep(n)) for n in rt.hook_names(model)]
    logits = rt.forward(model, torch.tensor([ids]), hooks)
    return logits[0, -1], cache


def site_cells(site, n_layers, n_heads, T):
    """(row, column, hook name, function(x, source) -> patched x) for every cell of the grid."""
    cells = []
    if site in ("resid", "attn", "mlp"):
        suffix = {"resid": "hook_resid_pre", "attn": "hook_attn_out", "mlp": "hook_mlp_out"}[site]
        hooks = [f"blocks.{l}.{suffix}" for l in range(n_layers)]
        if site == "resid":
            hooks.append(f"blocks.{n_layers - 1}.hook_resid_post")
        for row, hook in enumerate(hooks):
            for p in range(T):
                def patch(x, src, p=p):
                    x = x.clone()
                    x[:, p] = src[:, p]
                    return x
                cells.append((row, p, hook, patch))
    elif site == "heads":
        for l in range(n_layers):
            for h in range(n_heads):
                def patch(x, src, h=h):
                    x = x.clone()
                    x[:, :, h] = src[:, :, h]
                    return x
                cells.append((l, h, f"blocks.{l}.attn.hook_z", patch))
    elif site == "heads-by-position":
        for l in range(n_layers):
            for h in range(n_heads):
                for p in range(T):
                    def patch(x, src, h=h, p=p):
                        x = x.clone()
                        x[:, p, h] = src[:, p, h]
                        return x
                    cells.append((l * n_heads + h, p, f"blocks.{l}.attn.hook_z", patch))
    else:
        raise SystemExit(f"unknown site {site}")
    return cells


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with open(a.job) as f:
        job = json.load(f)
    torch.set_num_threads(1)
    model = rt.load_model(job["model"])
    c = model.cfg
    n_layers, n_heads = c["n_layers"], c["n_heads"]
    clean, corrupted = job["clean"], job["corrupted"]
    T = len(clean)
    answer, wrong = job["answer"], job["wrong"]
    clean_last, clean_cache = run_cached(model, clean)
    corrupted_last, corrupted_cache = run_cached(model, corrupted)
    clean_logp = torch.log_softmax(clean_last, dim=-1)
    m_clean = metrics(clean_last, answer, wrong, clean_logp)
    m_corrupted = metrics(corrupted_last, answer, wrong, clean_logp)

    def normalised(m):
        return {k: (m[k] - m_corrupted[k]) / (m_clean[k] - m_corrupted[k]) for k in METRICS}

    def patched_run(target, hook, fn):
        logits = rt.forward(model, torch.tensor([target]), [(hook, fn)])
        return normalised(metrics(logits[0, -1], answer, wrong, clean_logp))

    out_cases = []
    for case in job["cases"]:
        site, direction = case["site"], case["direction"]
        denoise = direction == "denoise"
        target = corrupted if denoise else clean
        src_cache, dst_cache = (clean_cache, corrupted_cache) if denoise else (corrupted_cache, clean_cache)
        result = {"site": site, "direction": direction}
        if site == "features":
            with open(os.path.join(case["sae"], "cfg.json")) as f:
                meta = json.load(f)["metadata"]
            hook_in = meta["hook_name"]
            hook_out = meta.get("hook_name_out") or hook_in
            encode, _, w_dec = ref_sae.load_saelens(case["sae"])
            diff = encode(src_cache[hook_in][0]) - encode(dst_cache[hook_in][0])  # [T, d_sae]
            features = {}
            unpatched = 0.0 if denoise else 1.0
            for p, fi in torch.nonzero(diff != 0).tolist():
                delta = diff[p, fi] * w_dec[fi]

                def add(x, p=p, delta=delta):
                    x = x.clone()
                    x[:, p] += delta
                    return x
                values = patched_run(target, hook_out, add)
                row = features.setdefault(str(fi), {k: [unpatched] * T for k in METRICS})
                for k in METRICS:
                    row[k][p] = values[k]
            result["features"] = features
        else:
            cells = site_cells(site, n_layers, n_heads, T)
            rows = 1 + max(r for r, _, _, _ in cells)
            cols = 1 + max(col for _, col, _, _ in cells)
            grid = {k: [[None] * cols for _ in range(rows)] for k in METRICS}
            for r, col, hook, patch in cells:
                src = src_cache[hook]
                values = patched_run(target, hook, lambda x, patch=patch, src=src: patch(x, src))
                for k in METRICS:
                    grid[k][r][col] = values[k]
            result["grid"] = grid
        out_cases.append(result)
    with open(a.out, "w") as f:
        json.dump({"clean": m_clean, "corrupted": m_corrupted, "cases": out_cases}, f)


if __name__ == "__main__":
    main()

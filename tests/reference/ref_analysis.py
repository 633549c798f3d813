#!/usr/bin/env python3
"""Independent reference for PromptAnalysis (the data behind the token, attention and logit-lens
views), in float64 on top of ref_transformer's forward pass.

  ref_analysis.py --model DIR --tokens 1,2,3 --top 10 [--track ID] --out FILE.json

FILE.json: {"next": [t][k] {"id","p"}   top-k next-token probabilities after each position,
            "attention": [layer][head][query][key],
            "lens_next": [row][t]  probability of tokens[t+1] when the residual of row (0: embeddings,
                         r>0: after block r-1) goes through the final norm and unembedding; null at the last t,
            "lens_top": [row][t][k] ids,
            "lens_top_p": [row][t][k] their probabilities,
            "lens_track": [row][t]  probability of token ID at every row and position (with --track)}
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_transformer as rt  # noqa: E402


def head(model, resid):
    """The model's final norm and unembedding (soft-capped where the model caps its logits)."""
    c, w = model.cfg, model.w
    if c["arch"] == "gpt2":
        x, _ = rt.layer_norm(resid, w["ln_f.weight"], w["ln_f.bias"], c["eps"])
    else:
        weight = w["norm.weight"] + 1.0 if c.get("norm_plus_one") else w["norm.weight"]
        x, _ = rt.rms_norm(resid, weight, c["eps"])
    logits = x @ w[model.unembed_name].T
    return logits if c["arch"] == "gpt2" else rt.softcap(logits, c.get("final_softcap"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--track", type=int, default=-1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    model = rt.load_model(a.model)
    ids = [int(s) for s in a.tokens.split(",")]
    L = model.cfg["n_layers"]
    seen = {}

    def keep(name):
        def fn(t):
            seen[name] = t.clone()
        return name, fn

    hooks = [keep("blocks.0.hook_resid_pre")]
    for l in range(L):
        hooks += [keep(f"blocks.{l}.hook_resid_post"), keep(f"blocks.{l}.attn.hook_pattern")]
    logits = rt.forward(model, torch.tensor([ids]), hooks)[0]
    probs = logits.softmax(-1)
    top = probs.topk(a.top, -1)
    out = {"next": [[{"id": int(i), "p": float(p)} for p, i in zip(top.values[t], top.indices[t])]
                    for t in range(len(ids))],
           "attention": [seen[f"blocks.{l}.attn.hook_pattern"][0].tolist() for l in range(L)],
           "lens_next": [], "lens_top": [], "lens_top_p": []}
    rows = [seen["blocks.0.hook_resid_pre"]] + [seen[f"blocks.{l}.hook_resid_post"] for l in range(L)]
    for r in rows:
        p = head(model, r[0]).softmax(-1)
        out["lens_next"].append([float(p[t, ids[t + 1]]) for t in range(len(ids) - 1)] + [None])
        top = p.topk(a.top, -1)
        out["lens_top"].append(top.indices.tolist())
        out["lens_top_p"].append(top.values.tolist())
        if a.track >= 0:
            out.setdefault("lens_track", []).append(p[:, a.track].tolist())
    with open(a.out, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()

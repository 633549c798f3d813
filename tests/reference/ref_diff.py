#!/usr/bin/env python3
"""Independent reference for the model diff (core/diff/ModelDiff.h), in float64 on top of
ref_transformer's forward pass and ref_sae's SAELens encoder.

  ref_diff.py scale --base DIR --out DIR --tensor NAME --factor F
      copies the model directory DIR (config.json, model.safetensors) with one tensor multiplied
      by F: "model B is model A with one MLP's weights scaled".
  ref_diff.py sae --out DIR --hook HOOK --d-in N --d-sae M --seed S
      writes a random standard (ReLU) SAELens SAE reading HOOK.
  ref_diff.py compute --a DIR --b DIR --sequences "1,2,3;4,5" [--sae DIR] --out FILE.json

FILE.json: {"kl": [seq][t]         KL(P_A || P_B) in nats of the next-token distributions,
            "cosine": [layer]      mean over all tokens of cos(resid_A, resid_B) at blocks.L.hook_resid_post,
            "norm_ratio": [layer]  mean over all tokens of |resid_B| / |resid_A|,
            "features": {"mean_a", "mean_b", "max_a", "max_b", "firing_a", "firing_b"}: [d_sae] lists
                        (with --sae), over every token of every sequence}
"""
import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_sae  # noqa: E402
import ref_transformer as rt  # noqa: E402
import st_io  # noqa: E402


def cmd_scale(a):
    os.makedirs(a.out, exist_ok=True)
    shutil.copy(os.path.join(a.base, "config.json"), os.path.join(a.out, "config.json"))
    tensors = st_io.read_safetensors(os.path.join(a.base, "model.safetensors"))
    if a.tensor not in tensors:
        raise SystemExit(f"{a.base}: no tensor {a.tensor}")
    tensors[a.tensor] = tensors[a.tensor] * a.factor
    st_io.write_safetensors(os.path.join(a.out, "model.safetensors"), tensors, dtype=None)


def cmd_sae(a):
    ref_sae.write_saelens_v6(a.out, "standard", a.hook, a.d_in, a.d_sae, ref_sae.Draw(a.seed))


def run(model, ids, hooks_wanted):
    seen = {}

    def keep(name):
        def fn(t):
            seen[name] = t.clone()
        return name, fn

    logits = rt.forward(model, torch.tensor([ids]), [keep(n) for n in hooks_wanted])[0]
    return logits, seen


def cmd_compute(a):
    ma, mb = rt.load_model(a.a), rt.load_model(a.b)
    L = ma.cfg["n_layers"]
    sequences = [[int(x) for x in s.split(",")] for s in a.sequences.split(";")]
    encode, hook = None, None
    if a.sae:
        encode, _, _ = ref_sae.load_saelens(a.sae)
        with open(os.path.join(a.sae, "cfg.json")) as f:
            hook = json.load(f)["metadata"]["hook_name"]
    names = [f"blocks.{l}.hook_resid_post" for l in range(L)] + ([hook] if hook else [])
    kl_all, cos_sum, ratio_sum, n = [], [0.0] * L, [0.0] * L, 0
    fa, fb = [], []
    for ids in sequences:
        la, sa = run(ma, ids, names)
        lb, sb = run(mb, ids, names)
        lpa, lpb = la.log_softmax(-1), lb.log_softmax(-1)
        kl_all.append((lpa.exp() * (lpa - lpb)).sum(-1).tolist())
        for l in range(L):
            ra, rb = sa[names[l]][0], sb[names[l]][0]
            cos_sum[l] += float(torch.nn.functional.cosine_similarity(ra, rb, dim=-1).sum())
            ratio_sum[l] += float((rb.norm(dim=-1) / ra.norm(dim=-1)).sum())
        n += len(ids)
        if hook:
            fa.append(encode(sa[hook][0].reshape(len(ids), -1)))
            fb.append(encode(sb[hook][0].reshape(len(ids), -1)))
    out = {"kl": kl_all, "cosine": [c / n for c in cos_sum], "norm_ratio": [r / n for r in ratio_sum]}
    if hook:
        A, B = torch.cat(fa), torch.cat(fb)
        out["features"] = {"mean_a": A.mean(0).tolist(), "mean_b": B.mean(0).tolist(),
                           "max_a": A.max(0).values.tolist(), "max_b": B.max(0).values.tolist(),
                           "firing_a": (A > 0).double().mean(0).tolist(),
                           "firing_b": (B > 0).double().mean(0).tolist()}
    with open(a.out, "w") as f:
        json.dump(out, f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("scale")
    s.add_argument("--base", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--tensor", required=True)
    s.add_argument("--factor", type=float, required=True)
    w = sub.add_parser("sae")
    w.add_argument("--out", required=True)
    w.add_argument("--hook", required=True)
    w.add_argument("--d-in", type=int, required=True)
    w.add_argument("--d-sae", type=int, required=True)
    w.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("compute")
    c.add_argument("--a", required=True)
    c.add_argument("--b", required=True)
    c.add_argument("--sequences", required=True)
    c.add_argument("--sae", default="")
    c.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_grad_enabled(False)
    {"scale": cmd_scale, "sae": cmd_sae, "compute": cmd_compute}[a.cmd](a)


if __name__ == "__main__":
    main()

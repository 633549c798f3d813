#!/usr/bin/env python3
"""Independent float64 reference for interventions from an attribution graph (cs::interveneOnGraph,
issue 17), on top of ref_transformer's forward pass and ref_sae's SAELens maths.

  ref_intervene.py probe --job JOB.json --out OUT.json
      JOB.json: {"model": DIR, "transcoders": {ID: DIR}, "tokens": [ids]}
      OUT.json: {"features": [{"sae", "layer", "position", "feature", "activation"}, ...]: every
                 active transcoder feature of the clean run, largest activation first;
                 "top_before": [ids]: the 5 most likely next tokens after the prompt}

  ref_intervene.py run --job JOB.json --out OUT.json
      JOB.json: {"model": DIR, "transcoders": {ID: DIR}, "tokens": [ids],
                 "cases": [{"name", "targets": [ids], "freeze": bool, "max_new": N,
                            "interventions": [{"sae", "position", "feature", "kind": set|scale|ablate,
                                               "value"}]}]}
      OUT.json: {"cases": [{"name",
                            "targets": [{"token", "logit_before", "logit_after", "prob_before", "prob_after"}],
                            "top_after": [ids] (5, most likely first), "top_after_margin",
                            "activations_before": [...], "activations_after": [...],
                            "continuation_before": [ids], "continuation_after": [ids],
                            "margins_before": [...], "margins_after": [...] (per greedy step, the gap
                            between the two largest logits), "threshold_margin"}]}

What it computes, written from the semantics in core/attribution/GraphIntervention.h and not from
the C++ code:
  * "logit" = logit - mean logit over the vocabulary at the last prompt position; prob = softmax.
  * An intervention on feature f of the transcoder of layer L at position p: the transcoder encodes
    blocks.L.ln2.hook_normalized of the intervened run (a = its activation of f at p), and
    blocks.L.hook_mlp_out at p gets (new - a) * W_dec[f] added; new = value (set), value * a
    (scale), 0 (ablate). Interventions at one layer all read a before any of them is added.
  * freeze: every blocks.L.attn.hook_pattern row of a prompt position is replaced by the clean run's
    row (zeros past the prompt); rows of generated positions are left alone.
  * Continuations: greedy, the whole sequence recomputed every step (no KV cache), stopping after
    the end-of-text token (config.json's eos_token_id); the interventions act at their prompt
    positions only.
  * threshold_margin: the smallest |pre-activation - threshold| of the intervened features in the
    intervened prompt run (a JumpReLU this close to its threshold may fire in float32 and not in
    float64), so the caller can tell a convention problem from rounding.
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


class Transcoder:
    def __init__(self, sae_id, folder):
        with open(os.path.join(folder, "cfg.json")) as f:
            cfg = json.load(f)
        meta = cfg.get("metadata") or {}
        self.id = sae_id
        self.hook_in = meta.get("hook_name") or cfg.get("hook_name")
        self.hook_out = meta.get("hook_name_out") or cfg.get("hook_name_out")
        if not (self.hook_in.endswith(".ln2.hook_normalized") and self.hook_out.endswith(".hook_mlp_out")):
            raise SystemExit(f"{folder}: not an ln2.hook_normalized -> hook_mlp_out transcoder")
        self.layer = int(self.hook_in.split(".")[1])
        self.encode, _, self.W_dec = ref_sae.load_saelens(folder)
        w = st_io.read_safetensors(os.path.join(folder, "sae_weights.safetensors"))
        self.W_enc, self.b_enc = w["W_enc"].to(DT), w["b_enc"].to(DT)
        self.threshold = w["threshold"].to(DT) if "threshold" in w else None


def load(job):
    model = rt.load_model(job["model"])
    tcs = {i: Transcoder(i, d) for i, d in job["transcoders"].items()}
    return model, tcs


def clean_run(model, tcs, tokens):
    """Logits [T, V], every layer's pattern [H, T, T] and every transcoder's codes [T, d_sae]."""
    patterns, codes = {}, {}
    hooks = []
    for L in range(model.cfg["n_layers"]):
        def keep(t, L=L):
            patterns[L] = t[0].clone()
        hooks.append((f"blocks.{L}.attn.hook_pattern", keep))
    for tc in tcs.values():
        def enc(x, tc=tc):
            codes[tc.id] = tc.encode(x[0])
        hooks.append((tc.hook_in, enc))
    with torch.no_grad():
        logits = rt.forward(model, torch.tensor([tokens]), hooks)[0]
    return logits, patterns, codes


def intervention_hooks(model, tcs, ivs, patterns, prompt_len, record):
    """Hooks applying `ivs`; record[i] receives (a, new, pre-activation margin) of each in every run."""
    hooks = []
    by_sae = {}
    for i, iv in enumerate(ivs):
        by_sae.setdefault(iv["sae"], []).append(i)
    for sae_id, members in by_sae.items():
        tc = tcs[sae_id]
        seen = {}

        def read(x, tc=tc, seen=seen):
            seen["codes"] = tc.encode(x[0])
            seen["pre"] = x[0] @ tc.W_enc + tc.b_enc
            return None

        def write(x, tc=tc, seen=seen, members=members):
            delta = torch.zeros_like(x)
            for i in members:  # every a read before any change is added
                iv = ivs[i]
                p, f = iv["position"], iv["feature"]
                a = float(seen["codes"][p, f])
                new = {"set": iv["value"], "scale": iv["value"] * a, "ablate": 0.0}[iv["kind"]]
                delta[0, p] += (new - a) * tc.W_dec[f]
                margin = abs(float(seen["pre"][p, f]) - float(tc.threshold[f])) if tc.threshold is not None else None
                record[i] = (a, new, margin)
            return x + delta

        hooks += [(tc.hook_in, read), (tc.hook_out, write)]
    if patterns is not None:
        for L in range(model.cfg["n_layers"]):
            def freeze(t, L=L):
                out = t.clone()
                n = min(prompt_len, t.shape[2])
                out[0, :, :n, :] = 0.0
                out[0, :, :n, :prompt_len] = patterns[L][:, :n, :prompt_len]
                return out
            hooks.append((f"blocks.{L}.attn.hook_pattern", freeze))
    return hooks


def greedy(model, prompt, n_new, hooks, eos):
    seq, out, margins = list(prompt), [], []
    for _ in range(n_new):
        with torch.no_grad():
            last = rt.forward(model, torch.tensor([seq]), hooks)[0, -1]
        top2 = torch.topk(last, 2).values
        margins.append(float(top2[0] - top2[1]))
        nxt = int(torch.argmax(last))
        out.append(nxt)
        seq.append(nxt)
        if nxt == eos:
            break
    return out, margins


def centred_and_probs(row):
    return row - row.mean(), torch.softmax(row, -1)


def run_case(model, tcs, tokens, case, eos):
    ivs = case["interventions"]
    T = len(tokens)
    logits, patterns, codes = clean_run(model, tcs, tokens)
    record = [None] * len(ivs)
    hooks = intervention_hooks(model, tcs, ivs, patterns if case["freeze"] else None, T, record)
    with torch.no_grad():
        after = rt.forward(model, torch.tensor([tokens]), hooks)[0, -1]
    measured = list(record)
    cb, pb = centred_and_probs(logits[-1])
    ca, pa = centred_and_probs(after)
    targets = case.get("targets") or [int(torch.argmax(logits[-1]))]
    top = torch.topk(pa, 6)
    out = {
        "name": case["name"],
        "targets": [{"token": t, "logit_before": float(cb[t]), "logit_after": float(ca[t]),
                     "prob_before": float(pb[t]), "prob_after": float(pa[t])} for t in targets],
        "top_after": [int(i) for i in top.indices[:5]],
        "top_after_margin": float(min(top.values[i] - top.values[i + 1] for i in range(5))),
        "activations_before": [float(codes[iv["sae"]][iv["position"], iv["feature"]]) for iv in ivs],
        "activations_after": [r[1] for r in measured],
        "threshold_margin": min([r[2] for r in measured if r[2] is not None], default=None),
    }
    n = case.get("max_new", 0)
    out["continuation_before"], out["margins_before"] = greedy(model, tokens, n, [], eos)
    out["continuation_after"], out["margins_after"] = greedy(model, tokens, n, hooks, eos)
    return out


def cmd_probe(job):
    model, tcs = load(job)
    logits, _, codes = clean_run(model, tcs, job["tokens"])
    feats = []
    for tc in tcs.values():
        c = codes[tc.id]
        for p, f in torch.nonzero(c > 0).tolist():
            feats.append({"sae": tc.id, "layer": tc.layer, "position": p, "feature": f, "activation": float(c[p, f])})
    feats.sort(key=lambda r: -r["activation"])
    return {"features": feats, "top_before": [int(i) for i in torch.topk(logits[-1], 5).indices]}


def cmd_run(job):
    model, tcs = load(job)
    with open(os.path.join(job["model"], "config.json")) as f:
        eos = json.load(f).get("eos_token_id")
    return {"cases": [run_case(model, tcs, job["tokens"], c, eos) for c in job["cases"]]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["probe", "run"])
    ap.add_argument("--job", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with open(a.job) as f:
        job = json.load(f)
    result = cmd_probe(job) if a.command == "probe" else cmd_run(job)
    with open(a.out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())

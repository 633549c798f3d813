#!/usr/bin/env python3
"""Independent float64 reference for steering (`circuitscope steer`, cs::Steering), on top of
ref_transformer's forward pass and ref_sae's SAE maths.

Every generation step re-runs the whole sequence (no KV cache); steering is a set of Python hooks
applied to that full forward, so a position's steering is recomputed from scratch each step.

  ref_steer.py probe --job JOB.json --out OUT.json
      JOB.json: {"model": DIR, "saes": {ID: DIR}, "tokens": [ids], "top": N, "max_new": M,
                 "vectors": {"dir": D, "seed": S, "hook": H, "prompt_a": [ids], "prompt_b": [ids],
                             "skip_first": 1}}   (vectors optional)
      OUT.json: {"features": {ID: [{"feature", "max", "fires", "acts": [per position]}, ...]},
                   the N features of each SAE with the largest activation over positions 1.. (BOS
                   left out), largest first; acts covers every position, BOS included;
                 "baseline": [ids] (the greedy unsteered continuation, with "max_new"),
                 "vectors": {"values": [d] (what D/direction.npy holds, float32 values),
                             "mean_difference": [d] (float64)}}
      With "vectors", D receives: direction.npy [d] and direction_row.npy [1, d] (numpy.save),
      direction.safetensors (one tensor "direction"), two.safetensors ("a" and "b", "b" being the
      direction), wrong_shape.npy [2, d], wrong_shape.safetensors ("direction" [d, 2]), and
      mean_difference.npy (float32).

  ref_steer.py generate --job JOB.json --out OUT.json
      JOB.json: {"model": DIR, "saes": {ID: DIR},
                 "cases": [{"name", "tokens": [ids], "max_new": N, "model"?, "saes"? (override),
                            "steer": [SPEC, ...], "when": COND | null,
                            "vectors": [{"file", "tensor"?, "hook", "mode", "value"?, "positions"?}],
                            "contrasts": [{"steer": [...], "when": ..., "vectors": [...]}]?}]}
      OUT.json: {"cases": [{"name", "baseline": [ids], "steered": [ids],
                            "baseline_margins": [per step], "steered_margins": [per step],
                            "condition": {"held": n, "positions": m, "closest": d} | null,
                            "contrasts": [[ids], ...]}]}
      margins: the gap between the largest and second-largest logit at each step (float64), so a
      caller can tell a real disagreement from a near-tie. condition: at the last step, how many
      positions it held at, out of how many, and the smallest |activation - threshold| seen.

SPEC = [SAE_ID/]FEATURE:MODE[=VALUE][@POSITIONS], COND = [SAE_ID/]FEATURE>THRESHOLD, parsed here
on their own. The SAE id may be left out when exactly one SAE is given. At each hook that rows
write to, every row's coefficient is read from the activation as it arrives at that hook (for a
transcoder, its encoding of the activation at its input hook), then all rows' changes are added:
add x += v d; clamp x += (v - a) d; ablate x += (0 - a) d, with d = W_dec[feature] and a = the
feature's activation (vector rows: d the vector, a = <x, d> / <d, d>). A condition holds at a
position when its feature, in an unsteered forward over the same tokens, exceeds the threshold.
Generation is greedy and stops after the end-of-text token (config.json's eos_token_id).
"""
import argparse
import json
import os
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_sae  # noqa: E402
import ref_transformer as rt  # noqa: E402
import st_io  # noqa: E402


class SpecError(Exception):
    pass


# ------------------------------------------------------------------------------------------- SAEs
class RefSae:
    """One SAELens folder: where it reads and writes, its encoder and its decoder rows (float64)."""

    def __init__(self, sae_id, folder):
        with open(os.path.join(folder, "cfg.json")) as f:
            cfg = json.load(f)
        meta = cfg.get("metadata") or {}
        self.id = sae_id
        self.hook_in = meta.get("hook_name") or cfg.get("hook_name") or cfg.get("hook_point")
        self.transcoder = cfg.get("architecture") in ref_sae.TRANSCODERS
        self.hook_out = (meta.get("hook_name_out") or cfg.get("hook_name_out")) if self.transcoder else self.hook_in
        self.encode, _, self.W_dec = ref_sae.load_saelens(folder)
        self.d_sae = self.W_dec.shape[0]


def load_saes(spec):
    return {sae_id: RefSae(sae_id, folder) for sae_id, folder in spec.items()}


# ---------------------------------------------------------------------------------------- parsing
SPEC_RE = re.compile(r"^(?:(?P<sae>.+)/)?(?P<feature>[0-9]+):(?P<mode>add|clamp|ablate)"
                     r"(?:=(?P<value>[^@]+))?(?:@(?P<positions>[^@]+))?$")
COND_RE = re.compile(r"^(?:(?P<sae>.+)/)?(?P<feature>[0-9]+)>(?P<threshold>.+)$")


def parse_positions(text):
    """A predicate pos, prompt_length -> bool."""
    if text in (None, "all"):
        return lambda p, n: True
    if text == "prompt":
        return lambda p, n: p < n
    if text == "generated":
        return lambda p, n: p >= n
    m = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", text)
    if not m:
        raise SpecError(f"positions {text!r}")
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) is not None else first
    return lambda p, n: first <= p <= last


def pick_sae(saes, sae_id, what):
    if sae_id is None:
        if len(saes) != 1:
            raise SpecError(f"{what}: name one of {sorted(saes)}")
        return next(iter(saes.values()))
    if sae_id not in saes:
        raise SpecError(f"{what}: unknown SAE {sae_id!r}")
    return saes[sae_id]


class Row:
    """One steering row: the hook it writes to, its direction and how to find its coefficient."""

    def __init__(self, hook, direction, mode, value, where, sae=None, feature=None):
        self.hook, self.d, self.mode, self.value, self.where = hook, direction, mode, value, where
        self.sae, self.feature = sae, feature


def parse_spec(spec, saes):
    m = SPEC_RE.match(spec)
    if not m:
        raise SpecError(f"malformed spec {spec!r}")
    sae = pick_sae(saes, m.group("sae"), spec)
    feature = int(m.group("feature"))
    if feature >= sae.d_sae:
        raise SpecError(f"{spec}: feature out of range")
    mode = m.group("mode")
    value = 0.0 if mode == "ablate" else float(m.group("value"))
    return Row(sae.hook_out, sae.W_dec[feature], mode, value, parse_positions(m.group("positions")),
               sae=sae, feature=feature)


def read_vector(path, tensor=None):
    if path.endswith(".npy"):
        v = torch.from_numpy(np.load(path))
    else:
        tensors = st_io.read_safetensors(path)
        v = tensors[tensor] if tensor else next(iter(tensors.values()))
    return v.double().reshape(-1)


def parse_vector(spec):
    mode = spec["mode"]
    value = 0.0 if mode == "ablate" else float(spec["value"])
    return Row(spec["hook"], read_vector(spec["file"], spec.get("tensor")), mode, value,
               parse_positions(spec.get("positions")))


def parse_condition(cond, saes):
    m = COND_RE.match(cond)
    if not m:
        raise SpecError(f"malformed condition {cond!r}")
    sae = pick_sae(saes, m.group("sae"), cond)
    return sae, int(m.group("feature")), float(m.group("threshold"))


# ---------------------------------------------------------------------------------------- steering
def coefficient(row, x, codes):
    """The row's current coefficient a at every position of x [1, T, d] ([1, T])."""
    if row.sae is None:
        return (x @ row.d) / (row.d @ row.d)
    f = codes[row.sae.id] if row.sae.transcoder else row.sae.encode(x)
    return f[..., row.feature]


def steering_hooks(rows, prompt_length, allowed):
    """Hook functions applying `rows`; allowed[t] says whether the condition holds at position t."""
    codes = {}
    hooks = []
    # Transcoder rows read their input hook first (before any steering there), in the same forward.
    for sae in {r.sae.id: r.sae for r in rows if r.sae is not None and r.sae.transcoder}.values():
        def capture(x, sae=sae):
            codes[sae.id] = sae.encode(x)
        hooks.append((sae.hook_in, capture))
    by_hook = {}
    for r in rows:
        by_hook.setdefault(r.hook, []).append(r)
    for hook, hook_rows in by_hook.items():
        def steer(x, hook_rows=hook_rows):
            T = x.shape[1]
            mask = torch.tensor([[1.0 if allowed[t] else 0.0 for t in range(T)]], dtype=x.dtype)
            delta = torch.zeros_like(x)
            for r in hook_rows:  # every coefficient from x as it arrived, before any change
                here = torch.tensor([[1.0 if r.where(t, prompt_length) else 0.0 for t in range(T)]], dtype=x.dtype)
                coef = torch.full_like(x[..., 0], r.value)
                if r.mode != "add":
                    coef = coef - coefficient(r, x, codes)
                delta = delta + (coef * here * mask)[..., None] * r.d
            return x + delta
        hooks.append((hook, steer))
    return hooks


def condition_mask(model, seq, condition):
    """The condition feature's unsteered activation at every position, and where it holds."""
    sae, feature, threshold = condition
    seen = {}

    def grab(x):
        seen["a"] = sae.encode(x)[0, :, feature]
    rt.forward(model, torch.tensor([seq]), [(sae.hook_in, grab)])
    acts = seen["a"].tolist()
    return acts, [a > threshold for a in acts]


def generate(model, prompt, max_new, rows=(), condition=None):
    """Greedy tokens (full recompute each step), top-2 margins, and the condition's record."""
    eos = model.eos
    seq, out, margins = list(prompt), [], []
    record = {"held": 0, "positions": 0, "closest": float("inf")} if condition else None
    budget = min(max_new, model.cfg["n_ctx"] - len(prompt))
    for _ in range(budget):
        allowed = [True] * len(seq)
        if condition:
            acts, allowed = condition_mask(model, seq, condition)
            record["held"], record["positions"] = sum(allowed), len(allowed)
            record["closest"] = min(record["closest"], min(abs(a - condition[2]) for a in acts))
        hooks = steering_hooks(rows, len(prompt), allowed) if rows else []
        logits = rt.forward(model, torch.tensor([seq]), hooks)[0, -1]
        top2 = torch.topk(logits, 2).values
        margins.append(float(top2[0] - top2[1]))
        nxt = int(torch.argmax(logits))
        out.append(nxt)
        seq.append(nxt)
        if nxt == eos:
            break
    if record and record["closest"] == float("inf"):
        record["closest"] = None
    return out, margins, record


def rows_for(setting, saes):
    rows = [parse_spec(s, saes) for s in setting.get("steer", [])]
    rows += [parse_vector(v) for v in setting.get("vectors", [])]
    cond = setting.get("when")
    return rows, (parse_condition(cond, saes) if cond else None)


def cmd_generate(job):
    loaded = {}
    results = []
    baselines = {}
    for case in job["cases"]:
        # A case may bring its own model directory (another end-of-text token) and SAE set.
        model_dir = case.get("model", job["model"])
        sae_dirs = case.get("saes", job.get("saes", {}))
        key = json.dumps([model_dir, sae_dirs], sort_keys=True)
        if key not in loaded:
            loaded[key] = load({"model": model_dir, "saes": sae_dirs})
        model, saes = loaded[key]
        key = (model_dir, tuple(case["tokens"]), case["max_new"])
        if key not in baselines:
            baselines[key] = generate(model, case["tokens"], case["max_new"])
        base, base_margins, _ = baselines[key]
        rows, cond = rows_for(case, saes)
        steered, margins, record = generate(model, case["tokens"], case["max_new"], rows, cond)
        contrasts = []
        for c in case.get("contrasts", []):
            c_rows, c_cond = rows_for(c, saes)
            contrasts.append(generate(model, case["tokens"], case["max_new"], c_rows, c_cond)[0])
        results.append({"name": case["name"], "baseline": base, "steered": steered,
                        "baseline_margins": base_margins, "steered_margins": margins,
                        "condition": record, "contrasts": contrasts})
    return {"cases": results}


# ------------------------------------------------------------------------------------------ probe
def feature_table(model, saes, tokens, top):
    grabbed = {}
    hooks = []
    for sae in saes.values():
        def grab(x, sae=sae):
            grabbed[sae.id] = sae.encode(x)[0]  # [T, d_sae]
        hooks.append((sae.hook_in, grab))
    rt.forward(model, torch.tensor([tokens]), hooks)
    table = {}
    for sae_id, f in grabbed.items():
        peak = f[1:].max(dim=0).values
        best = torch.argsort(peak, descending=True)[:top]
        table[sae_id] = [{"feature": int(i), "max": float(peak[i]), "fires": int((f[1:, i] > 0).sum()),
                          "acts": f[:, i].tolist()} for i in best]
    return table


def mean_activation(model, tokens, hook, skip_first):
    seen = {}

    def grab(x):
        seen["x"] = x[0].reshape(x.shape[1], -1)
    rt.forward(model, torch.tensor([tokens]), [(hook, grab)])
    return seen["x"][skip_first:].mean(dim=0)


def write_vectors(model, spec):
    """Vector files in every layout loadSteeringVector reads, and the mean-difference direction."""
    d = spec["dir"]
    os.makedirs(d, exist_ok=True)
    width = model.cfg["d_model"]
    g = torch.Generator().manual_seed(spec.get("seed", 0))
    v = torch.randn(width, generator=g).numpy().astype(np.float32)
    np.save(os.path.join(d, "direction.npy"), v)
    np.save(os.path.join(d, "direction_row.npy"), v.reshape(1, width))
    np.save(os.path.join(d, "wrong_shape.npy"), np.stack([v, v]))
    st_io.write_safetensors(os.path.join(d, "direction.safetensors"), {"direction": torch.from_numpy(v)})
    st_io.write_safetensors(os.path.join(d, "two.safetensors"),
                            {"a": torch.from_numpy(-v), "b": torch.from_numpy(v)})
    st_io.write_safetensors(os.path.join(d, "wrong_shape.safetensors"),
                            {"direction": torch.from_numpy(np.stack([v, v], axis=1).copy())})
    k = spec.get("skip_first", 1)
    diff = (mean_activation(model, spec["prompt_a"], spec["hook"], k) -
            mean_activation(model, spec["prompt_b"], spec["hook"], k))
    np.save(os.path.join(d, "mean_difference.npy"), diff.numpy().astype(np.float32))
    return {"values": [float(x) for x in v], "mean_difference": diff.tolist()}


def cmd_probe(job):
    model, saes = load(job)
    out = {"features": feature_table(model, saes, job["tokens"], job.get("top", 8))}
    if job.get("max_new"):
        out["baseline"] = generate(model, job["tokens"], job["max_new"])[0]
    if "vectors" in job:
        out["vectors"] = write_vectors(model, job["vectors"])
    return out


# ------------------------------------------------------------------------------------------- main
def load(job):
    model = rt.load_model(job["model"])
    with open(os.path.join(job["model"], "config.json")) as f:
        model.eos = json.load(f).get("eos_token_id")
    return model, load_saes(job.get("saes", {}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["probe", "generate"])
    p.add_argument("--job", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_grad_enabled(False)
    # Hundreds of tiny float64 forwards: extra threads cannot help, and on a busy machine their
    # OpenMP spin-waiting made a 3-second job take two minutes.
    torch.set_num_threads(1)
    with open(a.job) as f:
        job = json.load(f)
    try:
        result = cmd_probe(job) if a.cmd == "probe" else cmd_generate(job)
    except SpecError as e:
        print(f"ref_steer: {e}", file=sys.stderr)
        return 1
    with open(a.out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())

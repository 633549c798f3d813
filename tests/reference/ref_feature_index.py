#!/usr/bin/env python3
"""Independent float64 reference for the feature store (docs/store.md, "What indexing computes").

  ref_feature_index.py --model DIR --sae DIR [--sae DIR ...] --corpus FILE.jsonl --out FILE.json
                       [--context T] [--tokens N] [--bos ID] [--extra 5]

Reads a .jsonl corpus of {"tokens": [ids]} documents (used exactly as given: no tokenizer, no BOS
added), cuts every document into consecutive windows of at most T tokens (no overlap), keeps
windows in corpus order until N tokens have been run (the last one cut to fit), runs each window
through the model on its own (tests/reference/ref_transformer.py, float64), captures every SAE's
input hook, encodes it (tests/reference/ref_sae.py's SAELens maths) and computes, for every SAE
and every feature, what `circuitscope feature --json` prints except pieces and labels:

  firings / density, max_activation, the 20 top examples (window span [p*-15, p*+5)), the 50-bin
  power-of-two histogram, the 10 intervals of window maxima with 4 splitmix64-sampled windows
  each, logit effects (W_dec[f] . W_U, 10 largest and 10 smallest) and the 10 nearest
  neighbours by decoder cosine.

Everything is written from docs/store.md, not from the C++ code. BOS positions (token == --bos,
default: the model's config.json bos_token_id) are run but never indexed: their activation in an
example reads 0 and they are never an example's peak.

FILE.json:
  {"bos", "context", "run_tokens", "windows": [[document, start, length], ...],
   "saes": [{"id", "hook", "d_sae", "tokens"}],
   "features": {sae id: [one object per feature, in index order]}}
  A feature object holds the fields of `feature --json` (without pieces and label), plus what a
  comparison with a float32 implementation needs to tell real differences from rounding:
    "firings": exact count under float64;
    "uncertain": indexed positions where the feature's firing could flip under rounding (a TopK
        pre-activation within eps of the k-th/k+1-th boundary, a JumpReLU pre-activation within eps
        of its threshold, or a selected value within eps of 0);
    "fuzzy": true when a rounding difference could change the examples or intervals: any uncertain
        position, a shown example's maximum within eps of another position of
        its window (p* could move), any candidate's maximum within eps of an interval edge,
        max_activation within eps of a power of two; "fuzzy_why" says which;
    "histogram_slack": non-zero activations within eps of a bin edge, plus "uncertain";
    "candidates": how many windows have m(w) > 0;
    "top_examples" has `--extra` more entries than the 20 shown (the next candidates in rank
        order), and each example has "window" (global window number) and "peak" (offset of p*);
    "logits" and "neighbours" lists have `--extra` more entries than the 10 shown; logits carry
        "token" and "value".
  eps (--eps, relative, default 2e-5) is about 6 times the largest difference measured between the
  C++ float32 activations on the demo and these float64 ones (3e-6). Numbers are rounded to 7
  significant digits (float32 precision), which keeps the file small.
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

TOP = 20
BINS = 50
INTERVALS = 10
PER_INTERVAL = 4
BEFORE = 15
AFTER = 5
SHOWN = 10  # logits and neighbours
MASK64 = (1 << 64) - 1


class RefError(Exception):
    pass


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def power_of_two_above(v):
    """The smallest power of two strictly greater than v (v > 0)."""
    m, e = math.frexp(v)  # v = m * 2**e, 0.5 <= m < 1, so 2**(e-1) <= v < 2**e
    return math.ldexp(1.0, e)


def g7(x):
    """A float rounded to 7 significant digits (float32 carries about 7)."""
    x = float(x)
    return 0.0 if x == 0 else float(f"{x:.7g}")


# ------------------------------------------------------------------------------------ corpus
def read_corpus(path, vocab):
    if not path.endswith(".jsonl"):
        raise RefError(f"{path}: the reference reads .jsonl {{\"tokens\": [...]}} corpora only")
    docs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if "tokens" not in obj:
                raise RefError(f"{path}:{n}: the reference needs {{\"tokens\": [...]}} documents (it has no tokenizer)")
            toks = [int(t) for t in obj["tokens"]]
            if not toks:
                raise RefError(f"{path}:{n}: empty document")
            if min(toks) < 0 or max(toks) >= vocab:
                raise RefError(f"{path}:{n}: token id out of range [0, {vocab})")
            docs.append(toks)
    return docs


def make_windows(docs, T, budget):
    """[(document, start, tokens)] in corpus order, cut to `budget` tokens in all."""
    out, used = [], 0
    for d, toks in enumerate(docs):
        for s in range(0, len(toks), T):
            if budget is not None and used >= budget:
                return out
            piece = toks[s:s + T]
            if budget is not None:
                piece = piece[:budget - used]
            out.append((d, s, piece))
            used += len(piece)
    return out


# -------------------------------------------------------------------------------------- SAEs
class RefSae:
    def __init__(self, folder, model):
        with open(os.path.join(folder, "cfg.json")) as f:
            cfg = json.load(f)
        meta = cfg.get("metadata") or {}
        self.id = os.path.basename(os.path.normpath(folder))
        self.hook = meta.get("hook_name") or cfg.get("hook_name") or cfg.get("hook_point")
        if not self.hook:
            raise RefError(f"{folder}/cfg.json names no hook")
        self.arch = cfg.get("architecture", "standard")
        act = cfg.get("activation_fn_str", cfg.get("activation_fn", "relu"))
        if self.arch == "standard" and act == "topk":
            self.arch = "topk"
        if self.arch not in ("standard", "topk", "jumprelu", "transcoder", "jumprelu_transcoder"):
            raise RefError(f"{folder}: architecture {self.arch} is not handled by this reference")
        # The activations themselves come from ref_sae (the SAELens maths, float64) ...
        self.encode, _, self.w_dec = ref_sae.load_saelens(folder)
        # ... the pre-activations, for telling rounding-sensitive firings apart, from the same weights.
        w = {k: v.double() for k, v in st_io.read_safetensors(os.path.join(folder, "sae_weights.safetensors")).items()}
        self.w = w
        self.k = cfg.get("k") or (cfg.get("activation_fn_kwargs") or {}).get("k")
        self.apply_b_dec = cfg.get("apply_b_dec_to_input", True) and "transcoder" not in self.arch
        norm = cfg.get("normalize_activations", "none")
        if norm not in ("none", None, False):
            raise RefError(f"{folder}: normalize_activations {norm!r} is not handled by this reference")
        self.d_in = int(cfg["d_in"])
        self.d_sae = int(cfg["d_sae"])
        d_model = model.cfg["d_model"]
        if self.d_in != d_model and not self.hook.endswith("mlp.hook_post"):
            raise RefError(f"{folder}: d_in {self.d_in} does not match hook {self.hook} ({d_model})")

    def pre(self, x):
        if self.apply_b_dec:
            x = x - self.w["b_dec"]
        return x @ self.w["W_enc"] + self.w["b_enc"]

    def uncertain(self, x, acts, eps_rel):
        """[N, d_sae] bool: positions where float rounding could flip whether the feature fires."""
        pre = self.pre(x)
        eps = eps_rel * torch.clamp(pre.abs(), min=1.0)
        if self.arch == "topk":
            vals = torch.topk(pre, self.k + 1, dim=-1).values
            kth, nxt = vals[:, self.k - 1:self.k], vals[:, self.k:self.k + 1]
            near_boundary = (kth - nxt) < eps_rel * torch.clamp(kth.abs(), min=1.0)
            band = (pre >= nxt - eps) & (pre <= kth + eps)
            # a selected (or nearly selected) pre-activation within rounding of zero: relu decides
            return (near_boundary & band) | ((pre.abs() < eps) & (pre >= nxt - eps))
        if self.arch in ("jumprelu", "jumprelu_transcoder"):
            return (pre - self.w["threshold"]).abs() < eps
        return pre.abs() < eps


def hook_capture(model, tokens, hooks):
    """Runs the reference forward once and returns {hook name: tensor [B, T, d]}."""
    cache = {}

    def saver(name):
        def fn(t):
            cache[name] = t.detach().clone()
        return fn

    known = set(rt.hook_names(model))
    for h in hooks:
        if h not in known:
            raise RefError(f"unknown hook {h}")
    rt.forward(model, tokens, [(h, saver(h)) for h in hooks])
    return cache


# ------------------------------------------------------------------------------------- stats
def feature_stats(sae, acts, unc, windows, window_of, indexed, eps_rel, extra):
    """acts: [N, d_sae] float64 over all run positions; unc: [N, d_sae] bool; indexed: [N] bool."""
    N, F = acts.shape
    W = len(windows)
    a = acts.clone()
    a[~indexed] = 0.0
    unc = unc & indexed[:, None]
    n_tokens = int(indexed.sum())

    # Window maxima and the first position reaching them (indexed positions only).
    win_start = [0] * W
    for i in range(1, W):
        win_start[i] = win_start[i - 1] + len(windows[i - 1][2])
    m = torch.zeros(W, F, dtype=torch.float64)
    pstar = torch.zeros(W, F, dtype=torch.long)
    for w in range(W):
        s, L = win_start[w], len(windows[w][2])
        block = a[s:s + L]  # [L, F]
        mx = block.max(dim=0).values
        hit = block == mx[None, :]
        first = torch.argmax(hit.to(torch.int8), dim=0)  # first True
        m[w] = mx
        pstar[w] = first
    firings = (a > 0).sum(dim=0)
    n_unc = unc.sum(dim=0)
    maxact = a.max(dim=0).values

    # Weights: logit effects and neighbours.
    W_dec = sae.w_dec  # [d_sae, d_out]
    logits = None
    if W_dec.shape[1] == sae.d_model:
        logits = W_dec @ sae.W_U.T  # [F, V]
    norms = W_dec.norm(dim=1)
    unit = W_dec / torch.where(norms > 0, norms, torch.ones_like(norms))[:, None]
    cos = unit @ unit.T  # zero rows give 0
    cos.fill_diagonal_(-math.inf)
    # highest cosine first, ties to the lower index (a stable sort of -cos)
    neighbour_order = torch.sort(-cos, dim=1, stable=True).indices[:, :SHOWN + extra]

    m_cols = m.T.tolist()        # [F][W] as Python floats: per-element tensor reads are slow
    pstar_cols = pstar.T.tolist()
    a_cols = a.T.contiguous()    # [F, N]

    def example(w, f):
        d, start, toks = windows[w]
        L = len(toks)
        p = pstar_cols[f][w]
        lo, hi = max(0, p - BEFORE), min(L, p + AFTER)
        s = win_start[w]
        return {"window": w, "document": d, "start": start + lo, "tokens": toks[lo:hi],
                "activations": [g7(v) for v in a_cols[f, s + lo:s + hi].tolist()],
                "max": g7(m_cols[f][w]), "peak": p - lo}

    out = []
    for f in range(F):
        col_m = m_cols[f]
        cands = [w for w in range(W) if col_m[w] > 0]
        M = power_of_two_above(float(maxact[f])) if maxact[f] > 0 else 0.0
        why = []
        if n_unc[f] > 0:
            unc_windows = set(window_of[unc[:, f]].tolist())
            if unc_windows:
                why.append(f"{len(unc_windows)} windows hold positions whose firing rounding could flip")
        # Top examples: highest m, ties to the lower window.
        ranked = sorted(cands, key=lambda w: (-col_m[w], w))
        top = [example(w, f) for w in ranked[:TOP + extra]]
        # Histogram of non-zero indexed activations.
        counts = [0] * BINS
        slack = int(n_unc[f])
        edges = []
        vals = a_cols[f][a_cols[f] > 0]
        if M > 0:
            v32 = vals.to(torch.float32).to(torch.float64)
            bins = torch.floor(v32 * BINS / M).long().clamp(max=BINS - 1)
            counts = torch.bincount(bins, minlength=BINS).tolist()
            frac = v32 * BINS / M
            slack += int(((frac - torch.round(frac)).abs() < eps_rel * BINS / M * torch.clamp(v32, min=1.0)).sum())
            edges = [M * i / BINS for i in range(BINS + 1)]
            if abs(float(maxact[f]) - M / 2) <= eps_rel * max(1.0, float(maxact[f])):
                why.append("max_activation is within rounding of a power of two")
        # Intervals: 10 bins of window maxima over [0, M), each the 4 windows of lowest splitmix64
        # priority; the non-empty ones up to the bin holding the max are shown.
        intervals = []
        if M > 0:
            bins = [[] for _ in range(INTERVALS)]
            for w in cands:
                mv = col_m[w]
                b = min(int(math.floor(float(torch.tensor(mv, dtype=torch.float32)) * INTERVALS / M)), INTERVALS - 1)
                edge = round(mv * INTERVALS / M)
                if abs(mv - edge * M / INTERVALS) <= eps_rel * max(1.0, mv):
                    why.append(f"window {w}'s max {mv:.6g} is within rounding of an interval edge")
                bins[b].append(((splitmix64(((w << 32) | f) & MASK64), w)))
            bins = [sorted(x)[:PER_INTERVAL] for x in bins]
            shown = [(i * M / INTERVALS, (i + 1) * M / INTERVALS, bins[i]) for i in range(INTERVALS)]
            for lo, hi, samples in shown:
                if not samples:
                    continue
                ws = sorted((w for _, w in samples), key=lambda w: (-col_m[w], w))
                intervals.append({"low": lo, "high": hi, "examples": [example(w, f) for w in ws]})
        # p* stability: another indexed position of a shown window within rounding of its max.
        shown_windows = set(e["window"] for e in top[:TOP + 1])
        for iv in intervals:
            shown_windows.update(e["window"] for e in iv["examples"])
        for w in shown_windows:
            s, L = win_start[w], len(windows[w][2])
            mv = col_m[w]
            close = ((a_cols[f, s:s + L] - mv).abs() <= eps_rel * max(1.0, mv)).sum()
            if int(close) > 1:
                why.append(f"window {w} has two positions within rounding of its max")
        rec = {"index": f, "max_activation": g7(maxact[f]), "firings": int(firings[f]),
               "density": firings[f].item() / n_tokens if n_tokens else 0.0,
               "uncertain": int(n_unc[f]), "fuzzy": bool(why), "fuzzy_why": "; ".join(why[:3]),
               "candidates": len(cands),
               "top_examples": top, "interval_examples": intervals,
               "histogram": {"edges": edges, "counts": counts}, "histogram_slack": slack}
        if logits is not None:
            row = logits[f]
            pos = torch.topk(row, SHOWN + extra)
            neg = torch.topk(-row, SHOWN + extra)
            rec["logits"] = {"positive": [{"token": int(t), "value": g7(v)} for v, t in zip(pos.values.tolist(), pos.indices.tolist())],
                             "negative": [{"token": int(t), "value": g7(-v)} for v, t in zip(neg.values.tolist(), neg.indices.tolist())]}
        else:
            rec["logits"] = {"positive": [], "negative": []}
        order = neighbour_order[f].tolist()
        rec["neighbours"] = [{"index": j, "cosine": g7(cos[f, j])} for j in order]
        out.append(rec)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--sae", action="append", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--context", type=int, default=0)
    ap.add_argument("--tokens", type=int, default=None)
    ap.add_argument("--bos", type=int, default=None)
    ap.add_argument("--extra", type=int, default=5)
    ap.add_argument("--eps", type=float, default=2e-5, help="relative rounding margin for 'uncertain' and 'fuzzy'")
    ap.add_argument("--batch", type=int, default=32, help="windows per reference forward pass (speed only)")
    a = ap.parse_args(argv)
    try:
        torch.set_grad_enabled(False)
        model = rt.load_model(a.model)
        with open(os.path.join(a.model, "config.json")) as f:
            raw = json.load(f)
        bos = a.bos if a.bos is not None else raw.get("bos_token_id")
        if bos is None:
            raise RefError("no --bos and config.json has no bos_token_id")
        T = a.context or min(model.cfg["n_ctx"], 128)
        if T > model.cfg["n_ctx"]:
            raise RefError(f"--context {T} exceeds the model's {model.cfg['n_ctx']}")
        docs = read_corpus(a.corpus, model.cfg["vocab"])
        windows = make_windows(docs, T, a.tokens)
        saes = [RefSae(p, model) for p in a.sae]
        W_U = model.w[model.unembed_name]  # [V, d]
        for s in saes:
            s.W_U = W_U
            s.d_model = model.cfg["d_model"]
        hooks = sorted(set(s.hook for s in saes))

        # Run windows in batches padded at the end (causal attention: padding never reaches
        # earlier positions), keep each window's real positions in corpus order.
        captured = {h: [] for h in hooks}
        for b0 in range(0, len(windows), a.batch):
            chunk = windows[b0:b0 + a.batch]
            Lmax = max(len(w[2]) for w in chunk)
            toks = torch.zeros(len(chunk), Lmax, dtype=torch.long)
            for i, w in enumerate(chunk):
                toks[i, :len(w[2])] = torch.tensor(w[2])
            cache = hook_capture(model, toks, hooks)
            for h in hooks:
                for i, w in enumerate(chunk):
                    captured[h].append(cache[h][i, :len(w[2])])
        X = {h: torch.cat(captured[h]) for h in hooks}
        flat_tokens = torch.tensor([t for w in windows for t in w[2]], dtype=torch.long)
        window_of = torch.tensor([i for i, w in enumerate(windows) for _ in w[2]], dtype=torch.long)
        indexed = flat_tokens != bos

        result = {"bos": bos, "context": T, "run_tokens": int(flat_tokens.numel()),
                  "windows": [[d, s, len(t)] for d, s, t in windows], "saes": [], "features": {}}
        for s in saes:
            x = X[s.hook]
            acts = s.encode(x)
            unc = s.uncertain(x, acts, a.eps)
            result["saes"].append({"id": s.id, "hook": s.hook, "d_sae": s.d_sae, "tokens": int(indexed.sum())})
            result["features"][s.id] = feature_stats(s, acts, unc, windows, window_of, indexed, a.eps, a.extra)
        with open(a.out, "w") as f:
            f.write(json.dumps(result, separators=(",", ":")))  # dumps: the C encoder
    except (RefError, rt.ModelError, OSError, ValueError, KeyError) as e:
        print(f"ref_feature_index: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

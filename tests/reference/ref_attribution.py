#!/usr/bin/env python3
"""Independent float64 reference for attribution graphs (`circuitscope attribute`, issue 17).

  ref_attribution.py transcoders --model DIR --out DIR [--seed 0] [--d-sae 48] [--arch jumprelu_transcoder]
      Writes one random SAELens transcoder folder per layer (--arch jumprelu_transcoder or
      skip_transcoder), DIR/layer_L, reading blocks.L.ln2.hook_normalized and writing
      blocks.L.hook_mlp_out; prints their paths as a JSON list.

  ref_attribution.py saes --model DIR --out DIR --hooks HOOK ... [--seed 0] [--d-sae 48] [--arch topk] [--k 8]
      Writes one random SAELens residual-stream SAE per hook (blocks.L.hook_resid_pre|mid|post),
      DIR/sae_I; prints their paths as a JSON list.

  ref_attribution.py graph --model DIR (--transcoders P0 P1 ... | --saes P ...) --tokens 1,2,3 --out FILE.json
                           [--target ID ... | --logit-diff A B] [--max-logits 10] [--logit-probability 0.95]
      FILE.json: {"nodes": [{"node_id", "kind", "layer", "ctx_idx", "feature", "activation",
                             "token_prob"}],
                  "edges": [[source index, target index, weight], ...] (every non-zero one),
                  "checks": {...}}   (see below; the run fails when a self-check fails)
      kind: feature | error (an MLP's) | residual error (a residual SAE's) | embedding | logit.

The local replacement model, written here from the method's definition and not from the C++ code:
attention patterns and every norm's 1/scale are constants taken from the clean forward (so the
network is affine in whatever is written into the residual stream).
  * --transcoders (one per layer): each MLP is replaced by its transcoder's frozen feature writes
    (activation x W_dec row) plus b_dec plus, for a skip transcoder, ln2_out @ W_skip.T (a linear
    function of the frozen-normalised input, so not a node: a path, like attention), plus an
    error constant (true MLP output - the transcoder's whole output, skip term included).
  * --saes (residual SAEs): every MLP's output is a constant error node ("{L}_-1_{pos}"); at each
    SAE's hook the residual stream is replaced by the SAE's frozen feature writes + b_dec + an
    error constant (stream - the SAE's reconstruction), node "{L}_-2_{pos}". What came before
    reaches past the hook only through the features' target values (their encoders).
Each node's write is multiplied by its own coefficient c (1 in the clean run), so that the edge
source -> target is d target / d c_source: the written vector dotted with the target's gradient
at the point where it is written.

Node values: a feature's target is its pre-activation without the bias: (its SAE's input, before
any b_dec subtraction) . W_enc column (W_enc * exp(r_mag) for gated SAEs); a logit node's value is
logit - mean logit over the vocabulary at the last position, or with --logit-diff one node
"{n_layers+1}_{A}-{B}_{pos}" valued logit(A) - logit(B) (token_prob 0).

Self-checks (in "checks"; the run exits 1 if one fails):
  * frozen_vs_clean: the frozen model with every c = 1 reproduces the clean forward's logits and
    every SAE's input (it is the same network, only with constants where gradients stop);
  * identity: every target's value = sum of its incoming edges + its value with every c = 0 (the
    part due to biases and other non-nodes). This holds only because the frozen model is affine in
    the c's; a forgotten stop-gradient breaks it.
And, for the caller to judge how stable the comparison is against float32:
  * threshold_margin: the smallest distance of a pre-activation from where its feature would switch
    (a JumpReLU threshold, 0 for ReLU, the k-th/k+1-th gap for TopK; node sets may differ below it);
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


# ------------------------------------------------------------------------------------ dictionaries
def set_layer(folder, layer):
    # write_saelens_v6 always says layer 0; a loader that trusts hook_layer must see the right one.
    cfg_path = os.path.join(folder, "cfg.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["metadata"]["hook_layer"] = layer
    if "hook_name_out" in cfg["metadata"]:
        cfg["metadata"]["hook_layer_out"] = layer
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=1)


def cmd_transcoders(a):
    model = rt.load_model(a.model)
    c = model.cfg
    draw = ref_sae.Draw(a.seed)
    paths = []
    for L in range(c["n_layers"]):
        folder = os.path.join(a.out, f"layer_{L}")
        ref_sae.write_saelens_v6(folder, a.arch, f"blocks.{L}.ln2.hook_normalized", c["d_model"],
                                 a.d_sae, draw, hook_out=f"blocks.{L}.hook_mlp_out")
        set_layer(folder, L)
        paths.append(folder)
    print(json.dumps(paths))
    return 0


def cmd_saes(a):
    model = rt.load_model(a.model)
    draw = ref_sae.Draw(a.seed)
    paths = []
    for i, hook in enumerate(a.hooks):
        layer, _ = resid_point(hook, model.cfg["n_layers"])
        folder = os.path.join(a.out, f"sae_{i}")
        ref_sae.write_saelens_v6(folder, a.arch, hook, model.cfg["d_model"], a.d_sae, draw,
                                 k=a.k if a.arch == "topk" else None)
        set_layer(folder, layer)
        paths.append(folder)
    print(json.dumps(paths))
    return 0


def resid_point(hook, n_layers):
    """(layer, which) of a residual-stream hook blocks.L.hook_resid_pre|mid|post."""
    parts = hook.split(".")
    if len(parts) == 3 and parts[0] == "blocks" and parts[2] in ("hook_resid_pre", "hook_resid_mid", "hook_resid_post"):
        layer = int(parts[1])
        if 0 <= layer < n_layers:
            return layer, parts[2]
    raise SystemExit(f"{hook}: not a residual-stream hook of this model")


class Dictionary:
    """A transcoder or SAE, in float64, through ref_sae's own SAELens reading."""

    def __init__(self, folder):
        with open(os.path.join(folder, "cfg.json")) as f:
            cfg = json.load(f)
        meta = cfg.get("metadata") or {}
        self.arch = cfg.get("architecture")
        if cfg.get("normalize_activations", "none") != "none":
            raise SystemExit(f"{folder}: the reference handles unnormalised SAEs only")
        self.hook, self.hook_out = meta.get("hook_name"), meta.get("hook_name_out")
        self.encode, self.reconstruct, _ = ref_sae.load_saelens(folder)
        w = st_io.read_safetensors(os.path.join(folder, "sae_weights.safetensors"))
        w = {k: v.to(DT) for k, v in w.items()}
        self.W_dec, self.b_dec = w["W_dec"], w["b_dec"]
        self.apply_b_dec = cfg.get("apply_b_dec_to_input", True) and self.arch not in ref_sae.TRANSCODERS
        # A feature's target value reads these columns (gated: the magnitude path's).
        self.W_target = w["W_enc"] * torch.exp(w["r_mag"]) if self.arch == "gated" else w["W_enc"]
        self.b_target = w["b_mag"] if self.arch == "gated" else w["b_enc"]
        self.W_skip = w.get("W_skip")  # [d_out, d_in], skip transcoders
        self.threshold = w.get("threshold")
        self.k = cfg.get("k")

    def pre(self, x):
        """The pre-activation whose linear part is a feature's target value."""
        return ((x - self.b_dec) if self.apply_b_dec else x) @ self.W_target + self.b_target

    def margin(self, x):
        """How far the clean input is from changing which features are active."""
        pre = self.pre(x)
        if self.threshold is not None:
            return float((pre - self.threshold).abs().min())
        if self.arch == "topk":
            top = torch.sort(pre, dim=-1, descending=True).values
            return min(float((top[:, self.k - 1] - top[:, self.k]).min()), float(top[:, :self.k].abs().min()))
        if self.arch == "gated":
            raise SystemExit("gated SAEs: margin not implemented in the reference")
        return float(pre.abs().min())


def check_transcoder(tc, layer):
    want_in, want_out = f"blocks.{layer}.ln2.hook_normalized", f"blocks.{layer}.hook_mlp_out"
    if tc.arch not in ("jumprelu_transcoder", "skip_transcoder") or tc.hook != want_in or tc.hook_out != want_out:
        raise SystemExit(f"expected a jumprelu or skip transcoder {want_in} -> {want_out}, got {tc.arch} {tc.hook}")


# ------------------------------------------------------------------------------------ clean run
def clean_run(model, tokens):
    """Logits and every constant the frozen model needs, from ref_transformer's own forward."""
    c = model.cfg
    names = ["blocks.0.hook_resid_pre", "ln_final.hook_scale"]
    for L in range(c["n_layers"]):
        b = f"blocks.{L}."
        names += [b + "ln1.hook_scale", b + "ln2.hook_scale", b + "attn.hook_pattern", b + "ln2.hook_normalized",
                  b + "hook_mlp_out", b + "hook_resid_pre", b + "hook_resid_mid", b + "hook_resid_post"]
    cache = {}

    def saver(name):
        def fn(t):
            cache[name] = t.detach().clone()[0]
        return fn

    with torch.no_grad():
        logits = rt.forward(model, torch.tensor([tokens]), [(n, saver(n)) for n in names])[0]
    return logits, cache


# ----------------------------------------------------------------------------------- frozen model
class Plan:
    """Where nodes write. sites: (key, layer, dictionary or None, residual) in no particular order;
    an MLP's key is "mlpL" (its transcoder, or None: the whole MLP output is its error node), a
    residual SAE's key is its hook. acts[key]: [T, d_sae] frozen activations; errs[key]: [T, d]."""

    def __init__(self, sites):
        self.sites = sites
        self.mlp = {key: dic for key, _, dic, residual in sites if not residual}
        self.resid = {key: dic for key, _, dic, residual in sites if residual}
        self.acts, self.errs = {}, {}

    def dictionary(self, key):
        return self.resid[key] if key in self.resid else self.mlp[key]


def frozen_forward(model, cache, plan, coef):
    """The local replacement model. coef: {"emb": [T], "feat": {key: [T, d_sae]}, "err": {key: [T]}}.
    Returns (every dictionary's input {key: [T, d]}, final logits [T, V])."""
    c, w = model.cfg, model.w
    gpt2 = c["arch"] == "gpt2"
    H, Hkv, dh, d = c["n_heads"], c["n_kv_heads"], c["d_head"], c["d_model"]
    reads = {}

    def norm(x, scale, weight, bias):
        # The scale is a constant from the clean run: that is the stop-gradient.
        if gpt2:
            return (x - x.mean(dim=-1, keepdim=True)) / scale * weight + bias
        return x / scale * weight

    def site_output(key, dic):
        out = coef["err"][key][:, None] * plan.errs[key]
        if dic is not None:
            out = out + (coef["feat"][key] * plan.acts[key]) @ dic.W_dec + dic.b_dec
        return out

    def resid(name, x):
        # A residual SAE replaces the stream: nothing upstream passes but through its reads.
        if name not in plan.resid:
            return x
        reads[name] = x
        return site_output(name, plan.resid[name])

    x = coef["emb"][:, None] * cache["blocks.0.hook_resid_pre"]
    for L in range(c["n_layers"]):
        b = f"blocks.{L}."
        x = resid(b + "hook_resid_pre", x)
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
        else:
            x = x + z @ w[p + "self_attn.o_proj.weight"].T
        x = resid(b + "hook_resid_mid", x)
        if gpt2:
            h2 = norm(x, cache[b + "ln2.hook_scale"], w[p + "ln_2.weight"], w[p + "ln_2.bias"])
        else:
            h2 = norm(x, cache[b + "ln2.hook_scale"], w[p + "post_attention_layernorm.weight"], None)
        key = f"mlp{L}"
        reads[key] = h2
        tc = plan.mlp[key]
        mlp = site_output(key, tc)
        if tc is not None and tc.W_skip is not None:
            mlp = mlp + h2 @ tc.W_skip.T  # linear in the frozen-normalised input: a path, not a node
        x = resid(b + "hook_resid_post", x + mlp)
    if gpt2:
        hf = norm(x, cache["ln_final.hook_scale"], w["ln_f.weight"], w["ln_f.bias"])
    else:
        hf = norm(x, cache["ln_final.hook_scale"], w["norm.weight"], None)
    return reads, hf @ w[model.unembed_name].T


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


def make_plan(a, nL):
    """The sites of --transcoders (one per layer) or --saes (residual SAEs, MLPs whole)."""
    if bool(a.transcoders) == bool(a.saes):
        raise SystemExit("give --transcoders (one per layer) or --saes")
    if a.transcoders:
        if len(a.transcoders) != nL:
            raise SystemExit(f"give one transcoder per layer ({nL})")
        sites = []
        for L, path in enumerate(a.transcoders):
            tc = Dictionary(path)
            check_transcoder(tc, L)
            sites.append((f"mlp{L}", L, tc, False))
        return Plan(sites)
    sites = [(f"mlp{L}", L, None, False) for L in range(nL)]
    layers = set()
    for path in a.saes:
        dic = Dictionary(path)
        if dic.arch in ref_sae.TRANSCODERS:
            raise SystemExit(f"{path}: a transcoder among --saes")
        layer, _ = resid_point(dic.hook, nL)
        if layer in layers:
            raise SystemExit(f"{path}: a second residual SAE for layer {layer}")
        layers.add(layer)
        sites.append((dic.hook, layer, dic, True))
    return Plan(sites)


def site_input_name(key, residual):
    return key if residual else f"blocks.{key[3:]}.ln2.hook_normalized"


def cmd_graph(a):
    torch.set_num_threads(1)
    model = rt.load_model(a.model)
    c = model.cfg
    nL = c["n_layers"]
    plan = make_plan(a, nL)
    tokens = [int(s) for s in a.tokens.split(",")]
    T = len(tokens)

    logits, cache = clean_run(model, tokens)
    last = logits[-1]
    probs = torch.softmax(last, dim=-1)
    targets = [int(t) for t in a.target] if a.target else []
    if a.logit_diff:
        logit_ids, logit_margin = [], None
    else:
        logit_ids, logit_margin = select_logits(probs, targets, a.max_logits, a.logit_probability)

    # Feature activations through ref_sae's encoder, errors through its reconstruction.
    threshold_margin = float("inf")
    clean_inputs = {}
    for key, L, dic, residual in plan.sites:
        out_name = key if residual else f"blocks.{L}.hook_mlp_out"
        if dic is None:
            plan.errs[key] = cache[out_name]
            continue
        xin = cache[site_input_name(key, residual)]
        clean_inputs[key] = xin
        f = dic.encode(xin)
        threshold_margin = min(threshold_margin, dic.margin(xin))
        plan.acts[key] = f
        plan.errs[key] = cache[out_name] - dic.reconstruct(xin, f)

    # Nodes: features, errors, embeddings, logits; sources remember their coefficient.
    nodes, sources, feat_targets = [], [], []  # sources: (node index, "emb"|"feat"|"err", key, index)
    for key, L, dic, residual in plan.sites:
        if dic is None:
            continue
        for pos in range(T):
            for i in torch.nonzero(plan.acts[key][pos] > 0).flatten().tolist():
                sources.append((len(nodes), "feat", key, (pos, i)))
                feat_targets.append((len(nodes), key, pos, i))
                nodes.append({"node_id": f"{L}_{i}_{pos}", "kind": "feature", "layer": str(L), "ctx_idx": pos,
                              "feature": i, "activation": float(plan.acts[key][pos, i])})
    for key, L, dic, residual in plan.sites:
        for pos in range(T):
            sources.append((len(nodes), "err", key, pos))
            nodes.append({"node_id": f"{L}_{-2 if residual else -1}_{pos}", "kind": "residual error" if residual else "error",
                          "layer": str(L), "ctx_idx": pos, "feature": -1, "activation": float(plan.errs[key][pos].norm())})
    for pos in range(T):
        sources.append((len(nodes), "emb", None, pos))
        nodes.append({"node_id": f"E_{tokens[pos]}_{pos}", "kind": "embedding", "layer": "E", "ctx_idx": pos,
                      "feature": tokens[pos], "activation": 0.0})
    first_logit = len(nodes)
    mean_logit = float(last.mean())
    for t in logit_ids:
        nodes.append({"node_id": f"{nL + 1}_{t}_{T - 1}", "kind": "logit", "layer": str(nL + 1), "ctx_idx": T - 1,
                      "feature": t, "activation": float(last[t]) - mean_logit, "token_prob": float(probs[t])})
    if a.logit_diff:
        A, B = (int(t) for t in a.logit_diff)
        nodes.append({"node_id": f"{nL + 1}_{A}-{B}_{T - 1}", "kind": "logit", "layer": str(nL + 1), "ctx_idx": T - 1,
                      "feature": A, "activation": float(last[A] - last[B]), "token_prob": 0.0})

    def coefficients(value):
        return {"emb": torch.full([T], value, dtype=DT, requires_grad=True),
                "feat": {k: torch.full_like(v, value).requires_grad_(True) for k, v in plan.acts.items()},
                "err": {k: torch.full([T], value, dtype=DT, requires_grad=True) for k in plan.errs}}

    def targets_of(reads, out_logits):
        vals = [reads[key][pos] @ plan.dictionary(key).W_target[:, i] for (_, key, pos, i) in feat_targets]
        for t in logit_ids:
            vals.append(out_logits[-1, t] - out_logits[-1].mean())
        if a.logit_diff:
            vals.append(out_logits[-1, int(a.logit_diff[0])] - out_logits[-1, int(a.logit_diff[1])])
        return vals

    coef = coefficients(1.0)
    reads, out_logits = frozen_forward(model, cache, plan, coef)
    values = targets_of(reads, out_logits)
    with torch.no_grad():
        base = [float(v) for v in targets_of(*frozen_forward(model, cache, plan, coefficients(0.0)))]

    frozen_err = float((out_logits - logits).abs().max())
    for key, x in clean_inputs.items():
        frozen_err = max(frozen_err, float((reads[key] - x).abs().max()))

    # Every source's coefficient as one entry of the concatenated gradients.
    leaves = [coef["emb"]] + list(coef["feat"].values()) + list(coef["err"].values())
    offset, start = {}, 0
    for name, leaf in [("emb", coef["emb"])] + [(("feat", k), v) for k, v in coef["feat"].items()] + \
            [(("err", k), v) for k, v in coef["err"].items()]:
        offset[name] = (start, leaf.shape)
        start += leaf.numel()

    def flat_index(kind, key, index):
        base_at, shape = offset["emb" if kind == "emb" else (kind, key)]
        return base_at + (index[0] * shape[1] + index[1] if kind == "feat" else index)

    src_nodes = torch.tensor([s[0] for s in sources])
    src_flat = torch.tensor([flat_index(kind, key, index) for _, kind, key, index in sources])
    edges = []
    identity_err = 0.0
    target_indices = [n for n, _, _, _ in feat_targets] + list(range(first_logit, len(nodes)))
    for k, (tgt, val) in enumerate(zip(target_indices, values)):
        grads = torch.autograd.grad(val, leaves, retain_graph=True, allow_unused=True)
        flat = torch.cat([(g if g is not None else torch.zeros_like(l)).flatten() for g, l in zip(grads, leaves)])
        w = flat[src_flat]
        for j in torch.nonzero(w).flatten().tolist():
            edges.append([int(src_nodes[j]), tgt, float(w[j])])
        identity_err = max(identity_err, abs(float(val) - (float(w.sum()) + base[k])) / max(1.0, abs(float(val))))
        # The value itself must be what the node reports.
        if tgt >= first_logit:
            identity_err = max(identity_err, abs(float(val) - nodes[tgt]["activation"]))

    checks = {"frozen_vs_clean": frozen_err, "identity": identity_err, "threshold_margin": threshold_margin,
              "logit_margin": logit_margin, "features_per_position": [
                  [int((plan.acts[key][pos] > 0).sum()) for pos in range(T)] for key in plan.acts]}
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
    t.add_argument("--arch", choices=["jumprelu_transcoder", "skip_transcoder"], default="jumprelu_transcoder")
    r = sub.add_parser("saes")
    r.add_argument("--model", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--hooks", nargs="+", required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--d-sae", type=int, default=48)
    r.add_argument("--arch", choices=["topk", "standard", "jumprelu"], default="topk")
    r.add_argument("--k", type=int, default=8)
    g = sub.add_parser("graph")
    g.add_argument("--model", required=True)
    g.add_argument("--transcoders", nargs="+", default=[])
    g.add_argument("--saes", nargs="+", default=[])
    g.add_argument("--tokens", required=True)
    g.add_argument("--target", nargs="*", default=[])
    g.add_argument("--logit-diff", nargs=2, default=None)
    g.add_argument("--max-logits", type=int, default=10)
    g.add_argument("--logit-probability", type=float, default=0.95)
    g.add_argument("--out", required=True)
    a = p.parse_args()
    if a.cmd == "graph" and a.logit_diff and a.target:
        raise SystemExit("--target and --logit-diff exclude each other")
    return {"transcoders": cmd_transcoders, "saes": cmd_saes, "graph": cmd_graph}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Independent reference forward pass for GPT-2, Llama (2 and 3.x), Qwen 2 and Gemma 2
checkpoints, in float64.

Written from the published model definitions and Hugging Face's config semantics (GPT-2:
LayerNorm, learned positions, Conv1D projections, tanh-GELU; Llama: RMSNorm, rotate-half RoPE,
grouped-query attention, SiLU-gated MLP, optional q/k/v/o biases (attention_bias) and Llama 3's
rope_scaling; Qwen 2: Llama with q/k/v biases and an optional sliding window on the layers from
max_window_layers on; Gemma 2: (1 + w) RMSNorms before and after each sublayer, embeddings times
sqrt(d_model), GeGLU, scores scaled by query_pre_attn_scalar^-0.5 and soft-capped before the
mask, a sliding window on even layers (or as layer_types says), soft-capped logits) with plain
tensor operations: no torch.nn layers, no fused kernels, no KV cache. It reads the checkpoint with
st_io and converts every stored value (f32/f16/bf16) to float64 before computing, so the only
rounding in the weights is the file's own.

  ref_transformer.py --model DIR --tokens 1,2,3[;4,5,6] --out FILE.json
                     [--generate N] [--zero-head L,H] [--dump-hooks name1,name2,...]

FILE.json: {"logits": [batch][pos][vocab] floats (the forward pass over --tokens),
            "generated": [N new ids] (greedy from the first row, full recompute each step; only
                         with --generate, never stops early),
            "hooks": {name: {"shape": [...], "data": [flat, C order]}} (only with --dump-hooks;
                     non-finite values, i.e. the masked entries of hook_attn_scores, are null)}

Hook points follow TransformerLens names; "hook_normalized" is a norm's full output (weight and
bias applied; for Gemma the (1 + w) weight). With Gemma 2's post-norms, blocks.L.ln1_post.* and
ln2_post.* fire on the attention / MLP output and hook_attn_out / hook_mlp_out on the normed
output (what is added to the residual), as in TransformerLens. --zero-head L,H replaces head H's pattern in layer L with zeros before it weights
the values, in every forward pass (so also during --generate); a dumped blocks.L.attn.hook_pattern
shows the pattern after that replacement.

As a module: load_model(dir) -> Model, forward(model, tokens[B,T], hooks=[(name, fn)]) -> logits,
greedy_generate(model, prompt, n, hooks) -> ids, hook_names(model) -> list of hook point names.
"""
import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

DTYPE = torch.float64


# ----------------------------------------------------------------------------------------------
# Loading


class ModelError(Exception):
    pass


def _require(cfg, key, where="config.json"):
    if key not in cfg or cfg[key] is None:
        raise ModelError(f"{where} has no '{key}'")
    return cfg[key]


def normalize_config(raw):
    """The handful of numbers the forward pass needs, with Hugging Face's defaults filled in."""
    arch = raw.get("model_type")
    if arch == "gpt2":
        d = int(_require(raw, "n_embd"))
        H = int(_require(raw, "n_head"))
        if raw.get("scale_attn_by_inverse_layer_idx") or raw.get("scale_attn_weights") is False:
            raise ModelError("GPT-2 attention-scaling variants are not implemented by the reference")
        cfg = {
            "arch": "gpt2",
            "n_layers": int(_require(raw, "n_layer")),
            "d_model": d,
            "n_heads": H,
            "n_kv_heads": H,
            "d_head": d // H,
            "d_mlp": int(raw.get("n_inner") or 4 * d),
            "vocab": int(_require(raw, "vocab_size")),
            "n_ctx": int(raw.get("n_positions") or _require(raw, "n_ctx")),
            "eps": float(raw.get("layer_norm_epsilon", 1e-5)),
            "act": raw.get("activation_function", "gelu_new"),
            "tied": bool(raw.get("tie_word_embeddings", True)),  # GPT2Config's default
        }
        if d % H:
            raise ModelError(f"n_embd {d} is not divisible by n_head {H}")
    elif arch in ("llama", "qwen2", "gemma2"):
        cfg = _decoder_config(raw, arch)
    else:
        raise ModelError(f"unknown model_type {arch!r} (the reference knows gpt2, llama, qwen2 and gemma2)")
    if cfg["act"] not in ACTIVATIONS:
        raise ModelError(f"activation {cfg['act']!r} is not implemented by the reference")
    return cfg


# Hugging Face's defaults where config.json leaves a field out, per architecture.
DECODER_DEFAULTS = {
    "llama": {"n_ctx": 2048, "tied": False, "act": "silu"},
    "qwen2": {"n_ctx": 32768, "tied": False, "act": "silu"},
    "gemma2": {"n_ctx": 8192, "tied": True, "act": "gelu_pytorch_tanh"},
}


def _decoder_config(raw, arch):
    defaults = DECODER_DEFAULTS[arch]
    d = int(_require(raw, "hidden_size"))
    H = int(_require(raw, "num_attention_heads"))
    Hkv = int(raw.get("num_key_value_heads") or H)
    L = int(_require(raw, "num_hidden_layers"))
    gemma = arch == "gemma2"
    cfg = {
        "arch": arch,
        "n_layers": L,
        "d_model": d,
        "n_heads": H,
        "n_kv_heads": Hkv,
        "d_head": int(raw.get("head_dim") or (256 if gemma else d // H)),
        "d_mlp": int(_require(raw, "intermediate_size")),
        "vocab": int(_require(raw, "vocab_size")),
        "n_ctx": int(raw.get("max_position_embeddings", defaults["n_ctx"])),
        "eps": float(raw.get("rms_norm_eps", 1e-6)),
        "act": raw.get("hidden_act", defaults["act"]),
        "rope_theta": float(raw.get("rope_theta", 10000.0)),
        "rope_scaling": raw.get("rope_scaling"),
        "tied": bool(raw.get("tie_word_embeddings", defaults["tied"])),
        # Gemma 2's extras; the values below leave Llama and Qwen 2 alone.
        "norm_plus_one": gemma,
        "post_norms": gemma,
        "embed_scale": math.sqrt(d) if gemma else 1.0,
        "score_scale": 1.0 / math.sqrt(raw.get("query_pre_attn_scalar", 256)) if gemma else None,
        "attn_softcap": raw.get("attn_logit_softcapping", 50.0) if gemma else None,
        "final_softcap": raw.get("final_logit_softcapping", 30.0) if gemma else None,
        "windows": [None] * L,  # per layer: a query at i sees keys j with i - window < j <= i
    }
    if cfg["score_scale"] is None:
        cfg["score_scale"] = 1.0 / math.sqrt(cfg["d_head"])
    cfg["attention_bias"] = arch == "llama" and bool(raw.get("attention_bias"))
    if arch == "llama" and raw.get("mlp_bias"):
        raise ModelError("mlp_bias is not implemented by the reference")
    if gemma:
        cfg["act"] = raw.get("hidden_activation") or cfg["act"]  # what Gemma2MLP reads
        sliding = _sliding_layers(raw, L, default=[layer % 2 == 0 for layer in range(L)])
        cfg["windows"] = [raw.get("sliding_window", 4096) if s else None for s in sliding]
    elif arch == "qwen2" and raw.get("use_sliding_window"):
        first = raw.get("max_window_layers", 28)
        sliding = _sliding_layers(raw, L, default=[layer >= first for layer in range(L)])
        cfg["windows"] = [raw["sliding_window"] if s else None for s in sliding]
    if H % Hkv:
        raise ModelError(f"num_attention_heads {H} is not a multiple of num_key_value_heads {Hkv}")
    if cfg["d_head"] % 2:
        raise ModelError("RoPE needs an even head size")
    return cfg


def _sliding_layers(raw, n_layers, default):
    types = raw.get("layer_types")
    if types is None:
        return default
    if len(types) != n_layers or set(types) - {"sliding_attention", "full_attention"}:
        raise ModelError("layer_types must name each layer sliding_attention or full_attention")
    return [t == "sliding_attention" for t in types]


def read_checkpoint(model_dir):
    """All tensors of the directory (single file or index + shards), names as stored."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        tensors = {}
        for fname in sorted(set(weight_map.values())):
            part = st_io.read_safetensors(os.path.join(model_dir, fname))
            for name, t in part.items():
                if weight_map.get(name) == fname:
                    tensors[name] = t
        missing = [n for n in weight_map if n not in tensors]
        if missing:
            raise ModelError(f"index lists tensors missing from their shards: {missing[:5]}")
        return tensors
    if os.path.exists(single):
        return st_io.read_safetensors(single)
    raise ModelError(f"{model_dir}: neither model.safetensors nor model.safetensors.index.json")


class Model:
    """cfg: normalize_config's dict; w: {short name: float64 tensor} with the HF prefix removed."""

    def __init__(self, cfg, w):
        self.cfg = cfg
        self.w = w

    def get(self, name):
        if name not in self.w:
            raise ModelError(f"checkpoint has no tensor '{name}'")
        return self.w[name]

    def expect_shape(self, name, shape):
        t = self.get(name)
        if list(t.shape) != list(shape):
            raise ModelError(f"tensor '{name}' has shape {list(t.shape)}, config implies {list(shape)}")
        return t


def load_model(model_dir, dtype=DTYPE):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = normalize_config(json.load(f))
    prefix = "transformer." if cfg["arch"] == "gpt2" else "model."  # Llama, Qwen 2 and Gemma 2 alike
    w = {}
    for name, t in read_checkpoint(model_dir).items():
        short = name[len(prefix):] if name.startswith(prefix) else name
        w[short] = t.to(dtype)  # bf16/f16/f32 -> float64 is exact
    model = Model(cfg, w)
    _check_shapes(model)
    return model


def _check_shapes(m):
    c = m.cfg
    d, V, f = c["d_model"], c["vocab"], c["d_mlp"]
    H, Hkv, dh = c["n_heads"], c["n_kv_heads"], c["d_head"]
    if c["arch"] == "gpt2":
        m.expect_shape("wte.weight", [V, d])
        m.expect_shape("wpe.weight", [c["n_ctx"], d])
        for L in range(c["n_layers"]):
            p = f"h.{L}."
            for n, s in [("ln_1.weight", [d]), ("ln_1.bias", [d]), ("attn.c_attn.weight", [d, 3 * d]),
                         ("attn.c_attn.bias", [3 * d]), ("attn.c_proj.weight", [d, d]), ("attn.c_proj.bias", [d]),
                         ("ln_2.weight", [d]), ("ln_2.bias", [d]), ("mlp.c_fc.weight", [d, f]),
                         ("mlp.c_fc.bias", [f]), ("mlp.c_proj.weight", [f, d]), ("mlp.c_proj.bias", [d])]:
                m.expect_shape(p + n, s)
        m.expect_shape("ln_f.weight", [d])
        m.expect_shape("ln_f.bias", [d])
        embed = "wte.weight"
    else:
        m.expect_shape("embed_tokens.weight", [V, d])
        for L in range(c["n_layers"]):
            p = f"layers.{L}."
            for n, s in [("input_layernorm.weight", [d]), ("self_attn.q_proj.weight", [H * dh, d]),
                         ("self_attn.k_proj.weight", [Hkv * dh, d]), ("self_attn.v_proj.weight", [Hkv * dh, d]),
                         ("self_attn.o_proj.weight", [d, H * dh]), ("post_attention_layernorm.weight", [d]),
                         ("mlp.gate_proj.weight", [f, d]), ("mlp.up_proj.weight", [f, d]),
                         ("mlp.down_proj.weight", [d, f])]:
                m.expect_shape(p + n, s)
            if c["post_norms"]:
                m.expect_shape(p + "pre_feedforward_layernorm.weight", [d])
                m.expect_shape(p + "post_feedforward_layernorm.weight", [d])
            # Biases: Qwen 2 always has q/k/v ones, Llama with attention_bias q/k/v/o ones.
            if c["arch"] == "qwen2" or c.get("attention_bias"):
                for n, s in [("q_proj", H * dh), ("k_proj", Hkv * dh), ("v_proj", Hkv * dh)]:
                    m.expect_shape(p + "self_attn." + n + ".bias", [s])
            if c.get("attention_bias"):
                m.expect_shape(p + "self_attn.o_proj.bias", [d])
        m.expect_shape("norm.weight", [d])
        embed = "embed_tokens.weight"
    # Tied models use the input embedding as the unembedding (as HF's tie_weights does, even if a
    # checkpoint also carries an lm_head); untied ones must have lm_head.weight.
    if c["tied"]:
        m.unembed_name = embed
    else:
        m.expect_shape("lm_head.weight", [V, d])
        m.unembed_name = "lm_head.weight"


# ----------------------------------------------------------------------------------------------
# Building blocks, written out from their definitions


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def silu(x):
    return x / (1.0 + torch.exp(-x))


def relu(x):
    return torch.clamp(x, min=0.0)


ACTIVATIONS = {
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_fast": gelu_tanh,  # the same function, written differently
    "gelu": gelu_erf,
    "silu": silu,
    "swish": silu,
    "relu": relu,
}


def linear(x, w, prefix):
    """nn.Linear as stored by HF: weight [out, in], y = x W^T (+ bias, only if the checkpoint has one)."""
    y = x @ w[prefix + ".weight"].T
    bias = w.get(prefix + ".bias")
    return y if bias is None else y + bias


def layer_norm(x, w, b, eps):
    """(x - mean) / sqrt(biased variance + eps) * w + b; also returns the scale (TL's hook_scale)."""
    centred = x - x.mean(dim=-1, keepdim=True)
    scale = torch.sqrt((centred * centred).mean(dim=-1, keepdim=True) + eps)
    return centred / scale * w + b, scale


def rms_norm(x, w, eps):
    """x / sqrt(mean(x^2) + eps) * w; also returns the scale."""
    scale = torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps)
    return x / scale * w, scale


def rope_inverse_frequencies(d_head, theta, rope_scaling=None):
    """theta^(-2i/d_head), rescaled as config.json's rope_scaling says. "linear" divides every
    frequency by factor (positions / factor). "llama3" (Llama 3.1's long-context recipe) looks at
    each frequency's wavelength 2 pi / f against the original context C: below C / high_freq_factor
    it is kept, above C / low_freq_factor it is divided by factor, and in between it moves from
    f / factor to f as s = (C / wavelength - low) / (high - low) goes from 0 to 1."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, d_head, 2, dtype=DTYPE) / d_head))
    if not rope_scaling:
        return inv_freq
    kind = rope_scaling.get("rope_type", rope_scaling.get("type"))
    if kind == "default":
        return inv_freq
    if kind == "linear":
        return inv_freq / rope_scaling["factor"]
    if kind != "llama3":
        raise ModelError(f"rope_scaling {kind!r} is not implemented by the reference")
    factor = rope_scaling["factor"]
    low, high = rope_scaling["low_freq_factor"], rope_scaling["high_freq_factor"]
    context = rope_scaling["original_max_position_embeddings"]
    out = []
    for f in inv_freq.tolist():
        wavelength = 2 * math.pi / f
        if wavelength < context / high:
            out.append(f)
        elif wavelength > context / low:
            out.append(f / factor)
        else:
            s = (context / wavelength - low) / (high - low)
            out.append((1 - s) * (f / factor) + s * f)
    return torch.tensor(out, dtype=DTYPE)


def rope_tables(T, d_head, theta, inv_freq=None):
    """cos and sin of pos * inv_freq, duplicated across both halves: [T, d_head] each."""
    if inv_freq is None:
        inv_freq = rope_inverse_frequencies(d_head, theta)
    angle = torch.arange(T, dtype=DTYPE)[:, None] * inv_freq[None, :]  # [T, d_head/2]
    emb = torch.cat([angle, angle], dim=-1)
    return torch.cos(emb), torch.sin(emb)


def rotate_half(x):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x, cos, sin):
    """x: [B, T, heads, d_head]; the tables broadcast over batch and heads."""
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return x * c + rotate_half(x) * s


def softcap(x, cap):
    """Gemma 2's soft-capping: cap * tanh(x / cap), nearly x for |x| << cap, never beyond +-cap."""
    return x if not cap else cap * torch.tanh(x / cap)


def causal_attention(q, k, v, hook, scale=None, cap=None, window=None):
    """q: [B,T,H,dh], k/v: [B,T,Hkv,dh] -> z [B,T,H,dh]. Query head h reads kv head h // (H/Hkv).
    scores = q.k * scale (default 1/sqrt(dh)), soft-capped by `cap` if given, then masked: query i
    sees keys j <= i, and with a window only those with i - j < window."""
    B, T, H, dh = q.shape
    group = H // k.shape[2]
    kv_head = torch.arange(H) // group
    k_full = k[:, :, kv_head, :]  # [B,T,H,dh]
    v_full = v[:, :, kv_head, :]
    qh, kh, vh = (t.permute(0, 2, 1, 3) for t in (q, k_full, v_full))  # [B,H,T,dh]
    scores = qh @ kh.transpose(-1, -2) * (scale if scale is not None else 1.0 / math.sqrt(dh))  # [B,H,Tq,Tk]
    scores = softcap(scores, cap)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    hidden = j > i
    if window:
        hidden = hidden | (i - j >= window)
    scores = scores.masked_fill(hidden, float("-inf"))
    scores = hook("attn.hook_attn_scores", scores)
    # softmax written out: subtract the row max (finite: every row sees its own position)
    e = torch.exp(scores - scores.max(dim=-1, keepdim=True).values)
    pattern = e / e.sum(dim=-1, keepdim=True)
    pattern = hook("attn.hook_pattern", pattern)
    z = (pattern @ vh).permute(0, 2, 1, 3)  # [B,T,H,dh]
    return hook("attn.hook_z", z)


# ----------------------------------------------------------------------------------------------
# Forward pass


def hook_names(model):
    c = model.cfg
    names = ["hook_embed"] + (["hook_pos_embed"] if c["arch"] == "gpt2" else [])
    for L in range(c["n_layers"]):
        b = f"blocks.{L}."
        names += [b + "hook_resid_pre", b + "ln1.hook_scale", b + "ln1.hook_normalized",
                  b + "attn.hook_q", b + "attn.hook_k", b + "attn.hook_v"]
        if c["arch"] != "gpt2":
            names += [b + "attn.hook_rot_q", b + "attn.hook_rot_k"]
        names += [b + "attn.hook_attn_scores", b + "attn.hook_pattern", b + "attn.hook_z"]
        if c.get("post_norms"):
            names += [b + "ln1_post.hook_scale", b + "ln1_post.hook_normalized"]
        names += [b + "hook_attn_out", b + "hook_resid_mid", b + "ln2.hook_scale", b + "ln2.hook_normalized",
                  b + "mlp.hook_pre"]
        if c["arch"] != "gpt2":
            names += [b + "mlp.hook_pre_linear"]
        names += [b + "mlp.hook_post"]
        if c.get("post_norms"):
            names += [b + "ln2_post.hook_scale", b + "ln2_post.hook_normalized"]
        names += [b + "hook_mlp_out", b + "hook_resid_post"]
    names += ["ln_final.hook_scale", "ln_final.hook_normalized"]
    return names


def forward(model, tokens, hooks=()):
    """tokens: LongTensor [B, T] -> float64 logits [B, T, V].

    hooks: sequence of (hook point name, fn); fn(tensor) may return a replacement (same shape)
    or None to leave the activation alone. Several fns on one point run in the given order.
    """
    c, w = model.cfg, model.w
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    if tokens.dim() != 2 or tokens.numel() == 0:
        raise ModelError("tokens must be a non-empty [batch, pos] array")
    B, T = tokens.shape
    if T > c["n_ctx"]:
        raise ModelError(f"{T} tokens exceed the model's context of {c['n_ctx']}")
    if int(tokens.min()) < 0 or int(tokens.max()) >= c["vocab"]:
        raise ModelError(f"token ids must lie in [0, {c['vocab']})")

    by_name = {}
    for name, fn in hooks:
        by_name.setdefault(name, []).append(fn)

    def fire(name, x):
        for fn in by_name.get(name, ()):
            y = fn(x)
            if y is not None:
                if y.shape != x.shape:
                    raise ModelError(f"hook {name} changed the shape {list(x.shape)} -> {list(y.shape)}")
                x = y
        return x

    H, Hkv, dh = c["n_heads"], c["n_kv_heads"], c["d_head"]
    gpt2 = c["arch"] == "gpt2"
    act = ACTIVATIONS[c["act"]]

    if gpt2:
        x = fire("hook_embed", w["wte.weight"][tokens])
        pos = fire("hook_pos_embed", w["wpe.weight"][:T].unsqueeze(0).expand(B, T, -1).clone())
        x = x + pos
    else:
        x = fire("hook_embed", w["embed_tokens.weight"][tokens] * c["embed_scale"])
        inv_freq = rope_inverse_frequencies(dh, c["rope_theta"], c["rope_scaling"])
        cos, sin = rope_tables(T, dh, c["rope_theta"], inv_freq)

    def rms(x, name):
        """RMSNorm with the checkpoint's weight `name`; Gemma's weights are stored as w - 1."""
        weight = w[name] + 1.0 if c["norm_plus_one"] else w[name]
        return rms_norm(x, weight, c["eps"])

    def post_norm(x, name, hook, prefix):
        """Gemma 2's norm of a sublayer's output, before it joins the residual stream."""
        if not c.get("post_norms"):
            return x
        y, scale = rms(x, name)
        hook(prefix + ".hook_scale", scale)
        return hook(prefix + ".hook_normalized", y)

    for L in range(c["n_layers"]):
        b = f"blocks.{L}."

        def hook(name, t, b=b):
            return fire(b + name, t)

        x = hook("hook_resid_pre", x)
        # --- attention ---
        if gpt2:
            p = f"h.{L}."
            h, scale = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], c["eps"])
        else:
            p = f"layers.{L}."
            h, scale = rms(x, p + "input_layernorm.weight")
        hook("ln1.hook_scale", scale)  # read-only here: the normalized output is what flows on
        h = hook("ln1.hook_normalized", h)
        if gpt2:
            qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # Conv1D: [in, out]
            d = c["d_model"]
            q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
        else:
            q = linear(h, w, p + "self_attn.q_proj")
            k = linear(h, w, p + "self_attn.k_proj")
            v = linear(h, w, p + "self_attn.v_proj")
        q = hook("attn.hook_q", q.reshape(B, T, H, dh))
        k = hook("attn.hook_k", k.reshape(B, T, Hkv, dh))
        v = hook("attn.hook_v", v.reshape(B, T, Hkv, dh))
        if not gpt2:
            q = hook("attn.hook_rot_q", apply_rope(q, cos, sin))
            k = hook("attn.hook_rot_k", apply_rope(k, cos, sin))
        if gpt2:
            z = causal_attention(q, k, v, hook)
        else:
            z = causal_attention(q, k, v, hook, scale=c["score_scale"], cap=c["attn_softcap"], window=c["windows"][L])
        z_merged = z.reshape(B, T, H * dh)
        if gpt2:
            attn_out = z_merged @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        else:
            attn_out = linear(z_merged, w, p + "self_attn.o_proj")
            # Gemma 2's post_attention_layernorm normalises the attention output (Llama's, the MLP input).
            attn_out = post_norm(attn_out, p + "post_attention_layernorm.weight", hook, "ln1_post")
        attn_out = hook("hook_attn_out", attn_out)
        x = hook("hook_resid_mid", x + attn_out)
        # --- MLP ---
        if gpt2:
            h, scale = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], c["eps"])
        elif c.get("post_norms"):
            h, scale = rms(x, p + "pre_feedforward_layernorm.weight")
        else:
            h, scale = rms(x, p + "post_attention_layernorm.weight")
        hook("ln2.hook_scale", scale)
        h = hook("ln2.hook_normalized", h)
        if gpt2:
            pre = hook("mlp.hook_pre", h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
            post = hook("mlp.hook_post", act(pre))
            mlp_out = post @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        else:
            pre = hook("mlp.hook_pre", linear(h, w, p + "mlp.gate_proj"))
            lin = hook("mlp.hook_pre_linear", linear(h, w, p + "mlp.up_proj"))
            post = hook("mlp.hook_post", act(pre) * lin)
            mlp_out = linear(post, w, p + "mlp.down_proj")
            mlp_out = post_norm(mlp_out, p + "post_feedforward_layernorm.weight", hook, "ln2_post")
        mlp_out = hook("hook_mlp_out", mlp_out)
        x = hook("hook_resid_post", x + mlp_out)

    if gpt2:
        x, scale = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], c["eps"])
    else:
        x, scale = rms(x, "norm.weight")
    fire("ln_final.hook_scale", scale)
    x = fire("ln_final.hook_normalized", x)
    logits = x @ w[model.unembed_name].T  # [B, T, V]
    return logits if gpt2 else softcap(logits, c["final_softcap"])


def zero_head_hook(layer, head):
    name = f"blocks.{layer}.attn.hook_pattern"

    def fn(pattern):
        out = pattern.clone()
        out[:, head] = 0.0
        return out

    return name, fn


def greedy_generate(model, prompt, n_new, hooks=()):
    """n_new greedy tokens after `prompt`, re-running the whole sequence every step (no cache).
    Ties go to the lowest id (torch.argmax returns the first maximum)."""
    seq = list(prompt)
    out = []
    for _ in range(n_new):
        logits = forward(model, torch.tensor([seq]), hooks)
        nxt = int(torch.argmax(logits[0, -1]))
        out.append(nxt)
        seq.append(nxt)
    return out


# ----------------------------------------------------------------------------------------------
# Command line


def parse_tokens(text):
    rows = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        rows.append([int(s) for s in part.split(",") if s.strip() != ""])
    if not rows or any(not r for r in rows):
        raise ModelError("--tokens: give comma-separated ids, rows separated by ';'")
    if len({len(r) for r in rows}) != 1:
        raise ModelError("--tokens: every row must have the same length")
    return rows


def _finite_or_none(values):
    return [v if math.isfinite(v) else None for v in values]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--generate", type=int, default=0)
    ap.add_argument("--zero-head", action="append", default=[], metavar="L,H",
                    help="zero the attention pattern of head H in layer L (repeatable)")
    ap.add_argument("--dump-hooks", default="")
    a = ap.parse_args(argv)

    try:
        torch.set_grad_enabled(False)
        model = load_model(a.model)
        rows = parse_tokens(a.tokens)
        c = model.cfg
        known = set(hook_names(model))

        hooks = []
        for spec in a.zero_head:
            try:
                L, H = (int(s) for s in spec.split(","))
            except ValueError:
                raise ModelError(f"--zero-head {spec!r}: expected L,H")
            if not (0 <= L < c["n_layers"] and 0 <= H < c["n_heads"]):
                raise ModelError(f"--zero-head {spec}: no head {H} in layer {L}")
            hooks.append(zero_head_hook(L, H))

        wanted = [n.strip() for n in a.dump_hooks.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise ModelError(f"unknown hook point(s) {unknown}; this model has: {', '.join(hook_names(model))}")
        cache = {}

        def saver(name):
            def fn(t):
                cache[name] = t.detach().clone()
            return fn

        logits = forward(model, torch.tensor(rows), hooks + [(n, saver(n)) for n in wanted])
        if not torch.isfinite(logits).all():
            raise ModelError("the reference produced non-finite logits")
        result = {"logits": logits.tolist()}
        if a.generate > 0:
            if len(rows[0]) + a.generate > c["n_ctx"]:
                raise ModelError(f"prompt {len(rows[0])} + {a.generate} new tokens exceed the context of {c['n_ctx']}")
            result["generated"] = greedy_generate(model, rows[0], a.generate, hooks)
        if wanted:
            result["hooks"] = {n: {"shape": list(cache[n].shape),
                                   "data": _finite_or_none(cache[n].flatten().tolist())} for n in wanted}
        with open(a.out, "w") as f:
            json.dump(result, f, allow_nan=False)
    except (ModelError, OSError, ValueError, KeyError) as e:
        print(f"ref_transformer: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

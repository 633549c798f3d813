#!/usr/bin/env python3
"""Writes a small random-weight model directory laid out the way Hugging Face saves one
(config.json + model.safetensors, or shards + model.safetensors.index.json), for the runtime tests.

  make_random_model.py --arch gpt2|llama|qwen2|gemma2 --out DIR --seed N
      [--layers 2] [--d-model 64] [--heads 4] [--kv-heads H] [--d-mlp N] [--vocab 101] [--ctx 64]
      [--dtype f32|f16|bf16] [--no-prefix] [--untied] [--shards K] [--rope-theta 10000]
      [--std 0.2] [--gain 1.0]
      [--head-dim N] [--rope-scaling none|linear|llama3 [--rope-factor F] [--rope-low-freq 1]
       [--rope-high-freq 4] [--rope-original-ctx N]] [--attention-bias]
      [--sliding-window W] [--max-window-layers K] [--layer-types sfsf...]
      [--attn-softcap C] [--final-softcap C] [--query-pre-attn-scalar S]

gpt2  : GPT2LMHeadModel names (`transformer.` prefix), Conv1D weights stored [in, out], biases
        everywhere, learned positions, tied head (with --untied: an extra `lm_head.weight` and
        "tie_word_embeddings": false). --d-mlp defaults to 4 * d_model (config n_inner = null).
llama : LlamaForCausalLM names (`model.` prefix), nn.Linear weights stored [out, in], no biases,
        RMSNorm, RoPE, SiLU-gated MLP, grouped-query attention with --kv-heads (default --heads).
        --d-mlp defaults to 8/3 * d_model rounded up to a multiple of 8. Tied unless --untied,
        in which case `lm_head.weight` (never prefixed) is written. --head-dim (default
        d_model / heads) is written as head_dim when it differs. --attention-bias writes
        "attention_bias": true and q/k/v/o biases. --rope-scaling writes rope_scaling (Llama 3.x:
        llama3 with factor, low_freq_factor, high_freq_factor, original_max_position_embeddings;
        or linear with factor).
qwen2 : Qwen2ForCausalLM: llama's layout and options, with biases on q, k and v (not o).
        --sliding-window W writes "use_sliding_window": true, sliding_window W and
        max_window_layers (--max-window-layers, default 0: every layer slides); with
        --layer-types also layer_types.
gemma2: Gemma2ForCausalLM: GeGLU (gelu_pytorch_tanh), RMSNorm weights stored centred at 0 (the
        model multiplies by 1 + w; drawn N(0, (std/2)^2) so (1 + w) matters), four norms per layer
        (input_layernorm, post_attention_layernorm on the attention output,
        pre_feedforward_layernorm, post_feedforward_layernorm), tied by default, explicit
        head_dim (--head-dim, default d_model / heads), query_pre_attn_scalar (default head_dim),
        attn_logit_softcapping / final_logit_softcapping (--attn-softcap 50 / --final-softcap 30;
        0 writes null), sliding_window (--sliding-window, default 4096) on the even layers, or
        on the layers --layer-types marks 's' (written as layer_types).

Initialisation (chosen so that every part of the network visibly matters and logits are O(1..10)):
  * token / position embeddings and an untied lm_head: N(0, std^2);
  * projection matrices: N(0, gain^2 / fan_in), so each projection keeps unit-variance inputs at
    unit variance and attention scores q.k/sqrt(d_head) have variance ~1 (patterns are neither
    uniform nor one-hot);
  * norm weights 1 + N(0, (std/2)^2); every bias N(0, (std/2)^2) -- nonzero so bias bugs show.
The values are drawn in float32 from torch.Generator(seed) and then rounded to --dtype; the
rounded values in the file are the model (the reference reads them back from the file).
"""
import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

DTYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16"}


class Init:
    """Draws all tensors from one generator, in a fixed order, so a seed fully determines a model."""

    def __init__(self, seed, std, gain):
        self.g = torch.Generator().manual_seed(seed)
        self.std = std
        self.gain = gain

    def normal(self, shape, std):
        return torch.randn(*shape, generator=self.g) * std

    def embedding(self, shape):
        return self.normal(shape, self.std)

    def matrix(self, shape, fan_in):
        return self.normal(shape, self.gain / math.sqrt(fan_in))

    def norm_weight(self, n):
        return 1.0 + self.normal([n], self.std / 2)

    def bias(self, n):
        return self.normal([n], self.std / 2)


def gpt2_tensors(a, init):
    d, f, V = a.d_model, a.d_mlp, a.vocab
    t = {"wte.weight": init.embedding([V, d]), "wpe.weight": init.embedding([a.ctx, d])}
    for L in range(a.layers):
        p = f"h.{L}."
        # Conv1D stores its weight as [in, out]: y = x @ W + b.
        t[p + "ln_1.weight"] = init.norm_weight(d)
        t[p + "ln_1.bias"] = init.bias(d)
        t[p + "attn.c_attn.weight"] = init.matrix([d, 3 * d], fan_in=d)
        t[p + "attn.c_attn.bias"] = init.bias(3 * d)
        t[p + "attn.c_proj.weight"] = init.matrix([d, d], fan_in=d)
        t[p + "attn.c_proj.bias"] = init.bias(d)
        t[p + "ln_2.weight"] = init.norm_weight(d)
        t[p + "ln_2.bias"] = init.bias(d)
        t[p + "mlp.c_fc.weight"] = init.matrix([d, f], fan_in=d)
        t[p + "mlp.c_fc.bias"] = init.bias(f)
        t[p + "mlp.c_proj.weight"] = init.matrix([f, d], fan_in=f)
        t[p + "mlp.c_proj.bias"] = init.bias(d)
    t["ln_f.weight"] = init.norm_weight(d)
    t["ln_f.bias"] = init.bias(d)
    prefix = "" if a.no_prefix else "transformer."
    out = {prefix + k: v for k, v in t.items()}
    if a.untied:
        out["lm_head.weight"] = init.embedding([V, d])
    config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "n_layer": a.layers,
        "n_embd": d,
        "n_head": a.heads,
        "n_positions": a.ctx,
        "n_ctx": a.ctx,
        "vocab_size": V,
        "n_inner": None if f == 4 * d else f,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "bos_token_id": V - 1,
        "eos_token_id": V - 1,
        "tie_word_embeddings": not a.untied,
    }
    return out, config


def llama_tensors(a, init):
    d, f, V = a.d_model, a.d_mlp, a.vocab
    H, Hkv = a.heads, a.kv_heads
    dh = d // H
    t = {"embed_tokens.weight": init.embedding([V, d])}
    for L in range(a.layers):
        p = f"layers.{L}."
        # nn.Linear stores its weight as [out, in]: y = x @ W^T.
        t[p + "input_layernorm.weight"] = init.norm_weight(d)
        t[p + "self_attn.q_proj.weight"] = init.matrix([H * dh, d], fan_in=d)
        t[p + "self_attn.k_proj.weight"] = init.matrix([Hkv * dh, d], fan_in=d)
        t[p + "self_attn.v_proj.weight"] = init.matrix([Hkv * dh, d], fan_in=d)
        t[p + "self_attn.o_proj.weight"] = init.matrix([d, H * dh], fan_in=H * dh)
        t[p + "post_attention_layernorm.weight"] = init.norm_weight(d)
        t[p + "mlp.gate_proj.weight"] = init.matrix([f, d], fan_in=d)
        t[p + "mlp.up_proj.weight"] = init.matrix([f, d], fan_in=d)
        t[p + "mlp.down_proj.weight"] = init.matrix([d, f], fan_in=f)
    t["norm.weight"] = init.norm_weight(d)
    prefix = "" if a.no_prefix else "model."
    out = {prefix + k: v for k, v in t.items()}
    if a.untied:
        out["lm_head.weight"] = init.embedding([V, d])
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": d,
        "intermediate_size": f,
        "num_hidden_layers": a.layers,
        "num_attention_heads": H,
        "num_key_value_heads": Hkv,
        "vocab_size": V,
        "max_position_embeddings": a.ctx,
        "rms_norm_eps": 1e-5,
        "rope_theta": float(a.rope_theta),
        "hidden_act": "silu",
        "tie_word_embeddings": not a.untied,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    return out, config


def head_dim(a):
    return a.head_dim or a.d_model // a.heads


def rope_scaling_config(a):
    if a.rope_scaling == "none":
        return None
    if a.rope_scaling == "linear":
        return {"rope_type": "linear", "factor": a.rope_factor}
    return {"rope_type": "llama3", "factor": a.rope_factor, "low_freq_factor": a.rope_low_freq,
            "high_freq_factor": a.rope_high_freq, "original_max_position_embeddings": a.rope_original_ctx}


def layer_types_config(a):
    return ["sliding_attention" if ch == "s" else "full_attention" for ch in a.layer_types]


def llama_like_tensors(a, init, q_bias, o_bias, norm_weight):
    """Llama's tensor layout (Qwen 2 adds q/k/v biases); draws in the same order as llama_tensors
    so that a model without biases and options is the same model for the same seed."""
    d, f, V = a.d_model, a.d_mlp, a.vocab
    H, Hkv, dh = a.heads, a.kv_heads, head_dim(a)
    t = {"embed_tokens.weight": init.embedding([V, d])}
    for L in range(a.layers):
        p = f"layers.{L}."
        t[p + "input_layernorm.weight"] = norm_weight(d)
        t[p + "self_attn.q_proj.weight"] = init.matrix([H * dh, d], fan_in=d)
        t[p + "self_attn.k_proj.weight"] = init.matrix([Hkv * dh, d], fan_in=d)
        t[p + "self_attn.v_proj.weight"] = init.matrix([Hkv * dh, d], fan_in=d)
        t[p + "self_attn.o_proj.weight"] = init.matrix([d, H * dh], fan_in=H * dh)
        if q_bias:
            t[p + "self_attn.q_proj.bias"] = init.bias(H * dh)
            t[p + "self_attn.k_proj.bias"] = init.bias(Hkv * dh)
            t[p + "self_attn.v_proj.bias"] = init.bias(Hkv * dh)
        if o_bias:
            t[p + "self_attn.o_proj.bias"] = init.bias(d)
        t[p + "post_attention_layernorm.weight"] = norm_weight(d)
        t[p + "mlp.gate_proj.weight"] = init.matrix([f, d], fan_in=d)
        t[p + "mlp.up_proj.weight"] = init.matrix([f, d], fan_in=d)
        t[p + "mlp.down_proj.weight"] = init.matrix([d, f], fan_in=f)
    t["norm.weight"] = norm_weight(d)
    return t


def prefixed(a, t, init):
    prefix = "" if a.no_prefix else "model."
    out = {prefix + k: v for k, v in t.items()}
    if a.untied:
        out["lm_head.weight"] = init.embedding([a.vocab, a.d_model])
    return out


def llama_config(a, model_type, architecture):
    config = {
        "architectures": [architecture],
        "model_type": model_type,
        "hidden_size": a.d_model,
        "intermediate_size": a.d_mlp,
        "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads,
        "vocab_size": a.vocab,
        "max_position_embeddings": a.ctx,
        "rms_norm_eps": 1e-5,
        "rope_theta": float(a.rope_theta),
        "hidden_act": "silu",
        "tie_word_embeddings": not a.untied,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    if head_dim(a) != a.d_model // a.heads:
        config["head_dim"] = head_dim(a)
    if a.rope_scaling != "none":
        config["rope_scaling"] = rope_scaling_config(a)
    return config


def llama3_tensors(a, init):
    """llama with the options Llama 3.x (rope_scaling) and attention_bias need."""
    t = llama_like_tensors(a, init, q_bias=a.attention_bias, o_bias=a.attention_bias, norm_weight=init.norm_weight)
    config = llama_config(a, "llama", "LlamaForCausalLM")
    if a.attention_bias:
        config["attention_bias"] = True
    return prefixed(a, t, init), config


def qwen2_tensors(a, init):
    t = llama_like_tensors(a, init, q_bias=True, o_bias=False, norm_weight=init.norm_weight)
    config = llama_config(a, "qwen2", "Qwen2ForCausalLM")
    config.update({"rms_norm_eps": 1e-6, "use_sliding_window": a.sliding_window is not None,
                   "sliding_window": a.sliding_window or 4096, "max_window_layers": a.max_window_layers})
    if a.layer_types:
        config["layer_types"] = layer_types_config(a)
    return prefixed(a, t, init), config


def gemma2_tensors(a, init):
    d, f, V = a.d_model, a.d_mlp, a.vocab
    H, Hkv, dh = a.heads, a.kv_heads, head_dim(a)

    def centred(n):  # Gemma's RMSNorm multiplies by (1 + w)
        return init.normal([n], init.std / 2)

    t = {"embed_tokens.weight": init.embedding([V, d])}
    for L in range(a.layers):
        p = f"layers.{L}."
        t[p + "input_layernorm.weight"] = centred(d)
        t[p + "self_attn.q_proj.weight"] = init.matrix([H * dh, d], fan_in=d)
        t[p + "self_attn.k_proj.weight"] = init.matrix([Hkv * dh, d], fan_in=d)
        t[p + "self_attn.v_proj.weight"] = init.matrix([Hkv * dh, d], fan_in=d)
        t[p + "self_attn.o_proj.weight"] = init.matrix([d, H * dh], fan_in=H * dh)
        t[p + "post_attention_layernorm.weight"] = centred(d)
        t[p + "pre_feedforward_layernorm.weight"] = centred(d)
        t[p + "mlp.gate_proj.weight"] = init.matrix([f, d], fan_in=d)
        t[p + "mlp.up_proj.weight"] = init.matrix([f, d], fan_in=d)
        t[p + "mlp.down_proj.weight"] = init.matrix([d, f], fan_in=f)
        t[p + "post_feedforward_layernorm.weight"] = centred(d)
    t["norm.weight"] = centred(d)
    scalar = a.query_pre_attn_scalar or dh
    if float(scalar).is_integer():
        scalar = int(scalar)  # as the released configs write it
    config = {
        "architectures": ["Gemma2ForCausalLM"],
        "model_type": "gemma2",
        "hidden_size": d,
        "intermediate_size": f,
        "num_hidden_layers": a.layers,
        "num_attention_heads": H,
        "num_key_value_heads": Hkv,
        "head_dim": dh,
        "vocab_size": V,
        "max_position_embeddings": a.ctx,
        "rms_norm_eps": 1e-6,
        "rope_theta": float(a.rope_theta),
        "hidden_act": "gelu_pytorch_tanh",
        "hidden_activation": "gelu_pytorch_tanh",
        "query_pre_attn_scalar": scalar,
        "attn_logit_softcapping": a.attn_softcap or None,
        "final_logit_softcapping": a.final_softcap or None,
        "sliding_window": a.sliding_window or 4096,
        "attention_bias": False,
        "tie_word_embeddings": not a.untied,
        "bos_token_id": 2,
        "eos_token_id": 1,
    }
    if a.layer_types:
        config["layer_types"] = layer_types_config(a)
    if a.rope_scaling != "none":
        config["rope_scaling"] = rope_scaling_config(a)
    return prefixed(a, t, init), config


def write_model(out_dir, tensors, config, st_dtype, shards):
    os.makedirs(out_dir, exist_ok=True)
    config = dict(config, torch_dtype={"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[st_dtype])
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    meta = {"format": "pt"}
    if shards <= 1:
        st_io.write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, dtype=st_dtype, metadata=meta)
        return
    # Contiguous, roughly equal runs of tensors per shard, like HF's size-based splitting.
    names = list(tensors)
    if shards > len(names):
        raise SystemExit(f"--shards {shards}: only {len(names)} tensors to split")
    weight_map, total = {}, 0
    for i in range(shards):
        lo, hi = i * len(names) // shards, (i + 1) * len(names) // shards
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[lo:hi]}
        total += st_io.write_safetensors(os.path.join(out_dir, fname), part, dtype=st_dtype, metadata=meta)
        weight_map.update({n: fname for n in part})
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=["gpt2", "llama", "qwen2", "gemma2"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=None)
    ap.add_argument("--d-mlp", type=int, default=None)
    ap.add_argument("--vocab", type=int, default=101)
    ap.add_argument("--ctx", type=int, default=64)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="f32")
    ap.add_argument("--no-prefix", action="store_true")
    ap.add_argument("--untied", action="store_true")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--std", type=float, default=0.2, help="embedding std; norms/biases use std/2")
    ap.add_argument("--gain", type=float, default=1.0, help="projection std is gain/sqrt(fan_in)")
    ap.add_argument("--head-dim", type=int, default=None, help="llama, qwen2, gemma2: default d_model / heads")
    ap.add_argument("--rope-scaling", choices=["none", "linear", "llama3"], default="none")
    ap.add_argument("--rope-factor", type=float, default=8.0)
    ap.add_argument("--rope-low-freq", type=float, default=1.0)
    ap.add_argument("--rope-high-freq", type=float, default=4.0)
    ap.add_argument("--rope-original-ctx", type=int, default=256)
    ap.add_argument("--attention-bias", action="store_true", help="llama: q, k, v and o biases")
    ap.add_argument("--sliding-window", type=int, default=None, help="qwen2, gemma2")
    ap.add_argument("--max-window-layers", type=int, default=0, help="qwen2: first sliding layer")
    ap.add_argument("--layer-types", default="", help="qwen2, gemma2: one letter per layer, s(liding) or f(ull)")
    ap.add_argument("--attn-softcap", type=float, default=50.0, help="gemma2; 0 writes null")
    ap.add_argument("--final-softcap", type=float, default=30.0, help="gemma2; 0 writes null")
    ap.add_argument("--query-pre-attn-scalar", type=float, default=None, help="gemma2: default head_dim")
    a = ap.parse_args(argv)

    if min(a.layers, a.d_model, a.heads, a.vocab, a.ctx) < 1:
        ap.error("--layers, --d-model, --heads, --vocab and --ctx must be positive")
    if a.d_model % a.heads and not a.head_dim:
        ap.error(f"--d-model {a.d_model} is not divisible by --heads {a.heads}")
    if a.layer_types and (len(a.layer_types) != a.layers or set(a.layer_types) - set("sf")):
        ap.error("--layer-types needs one letter, s or f, per layer")
    if a.arch == "gpt2":
        if a.kv_heads not in (None, a.heads):
            ap.error("--kv-heads is for llama only (GPT-2 has one key/value head per query head)")
        a.kv_heads = a.heads
        if a.d_mlp is None:
            a.d_mlp = 4 * a.d_model
    else:
        a.kv_heads = a.heads if a.kv_heads is None else a.kv_heads
        if a.kv_heads < 1 or a.heads % a.kv_heads:
            ap.error(f"--heads {a.heads} is not a multiple of --kv-heads {a.kv_heads}")
        if head_dim(a) % 2:
            ap.error("RoPE needs an even head size")
        if a.d_mlp is None:
            a.d_mlp = math.ceil(8 * a.d_model / 3 / 8) * 8
    if a.d_mlp < 1:
        ap.error("--d-mlp must be positive")

    init = Init(a.seed, a.std, a.gain)
    llama_options = a.head_dim or a.rope_scaling != "none" or a.attention_bias
    if a.arch == "gpt2":
        make = gpt2_tensors
    elif a.arch == "llama":
        make = llama3_tensors if llama_options else llama_tensors
    else:
        make = qwen2_tensors if a.arch == "qwen2" else gemma2_tensors
    tensors, config = make(a, init)
    write_model(a.out, tensors, config, DTYPES[a.dtype], a.shards)


if __name__ == "__main__":
    main()

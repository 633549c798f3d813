#!/usr/bin/env python3
"""Writes a small random-weight model directory laid out the way Hugging Face saves one
(config.json + model.safetensors, or shards + model.safetensors.index.json), for the runtime tests.

  make_random_model.py --arch gpt2|llama --out DIR --seed N
      [--layers 2] [--d-model 64] [--heads 4] [--kv-heads H] [--d-mlp N] [--vocab 101] [--ctx 64]
      [--dtype f32|f16|bf16] [--no-prefix] [--untied] [--shards K] [--rope-theta 10000]
      [--std 0.2] [--gain 1.0]

gpt2  : GPT2LMHeadModel names (`transformer.` prefix), Conv1D weights stored [in, out], biases
        everywhere, learned positions, tied head (with --untied: an extra `lm_head.weight` and
        "tie_word_embeddings": false). --d-mlp defaults to 4 * d_model (config n_inner = null).
llama : LlamaForCausalLM names (`model.` prefix), nn.Linear weights stored [out, in], no biases,
        RMSNorm, RoPE, SiLU-gated MLP, grouped-query attention with --kv-heads (default --heads).
        --d-mlp defaults to 8/3 * d_model rounded up to a multiple of 8. Tied unless --untied,
        in which case `lm_head.weight` (never prefixed) is written.

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
    ap.add_argument("--arch", choices=["gpt2", "llama"], required=True)
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
    a = ap.parse_args(argv)

    if min(a.layers, a.d_model, a.heads, a.vocab, a.ctx) < 1:
        ap.error("--layers, --d-model, --heads, --vocab and --ctx must be positive")
    if a.d_model % a.heads:
        ap.error(f"--d-model {a.d_model} is not divisible by --heads {a.heads}")
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
        if (a.d_model // a.heads) % 2:
            ap.error("RoPE needs an even head size (d_model / heads)")
        if a.d_mlp is None:
            a.d_mlp = math.ceil(8 * a.d_model / 3 / 8) * 8
    if a.d_mlp < 1:
        ap.error("--d-mlp must be positive")

    init = Init(a.seed, a.std, a.gain)
    tensors, config = (gpt2_tensors if a.arch == "gpt2" else llama_tensors)(a, init)
    write_model(a.out, tensors, config, DTYPES[a.dtype], a.shards)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch eager baseline for bench_forward: the same model directory, the same thread count.

  reference_bench.py --model DIR [--threads T] [--json] [--reps 5]

Loads DIR (config.json + model.safetensors or an index with shards; gpt2 or llama) with the
project's own safetensors reader (tests/reference/st_io.py), builds a plain float32 nn.Module
implementation of the model -- the fast eager counterpart of tests/reference/ref_transformer.py,
written the way one would write it by hand in PyTorch (F.linear, F.layer_norm, F.softmax,
F.gelu(approximate="tanh"), F.silu, a preallocated KV cache for decoding) -- and measures, after a
warm-up, under torch.inference_mode():

  fwd_1x128_tok_s  full forward (logits for every position) of 1 x 128 random ids, median of --reps
  fwd_8x128_tok_s  the same at 8 x 128 (median of max(3, reps // 2 + 1) runs)
  decode_tok_s     greedy decoding with the KV cache: a 16-token prompt, 32 new tokens; the rate
                   over the 31 tokens that come from single-token cached steps (the prefill and the
                   first token are excluded), median of 3 runs

Random ids come from a fixed seed; the prompt is (i * 997) % vocab, as in bench_forward.
With --json, stdout is one JSON object:
  {"fwd_1x128_tok_s", "fwd_8x128_tok_s", "decode_tok_s", "threads", "torch",
   "arch", "seq", "load_s", "decode_new_tokens", "blas_core", "dtype"}
(--dtype bf16 converts the whole module, activations included, as model.to(torch.bfloat16) does)
(seq is 128 unless the model's context is shorter, in which case the forward runs use n_ctx;
blas_core is the OpenBLAS kernel family in use -- see ensure_fast_openblas).
"""
import argparse
import ctypes
import json
import math
import os
import statistics
import sys
import time

GENERIC_OPENBLAS_CORES = ("Prescott", "Core2", "Nehalem", "Unknown")


def openblas_core():
    """The kernel family the process's OpenBLAS picked ("" when there is no OpenBLAS)."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return ""


def ensure_fast_openblas():
    """The same process settings bench_forward makes (core/runtime/ComputeEnvironment.h), so both
    sides run on the same BLAS kernels and thread policy: Debian's OpenBLAS can misdetect recent
    Xeons as "Prescott" (SSE3 kernels, several times slower GEMM), and OpenMP threads that spin
    after each parallel region fight OpenBLAS's pthreads for the cores. When bench_forward runs
    this script it inherits both settings; run on its own, it sets them and re-executes before
    torch is imported. Variables the user set, or CIRCUITSCOPE_KEEP_ENV=1, are left alone."""
    if os.environ.get("CIRCUITSCOPE_KEEP_ENV"):
        return
    changed = False
    if not os.environ.get("OMP_WAIT_POLICY"):
        os.environ["OMP_WAIT_POLICY"] = "passive"
        changed = True
    want = None
    if not os.environ.get("OPENBLAS_CORETYPE") and openblas_core() in GENERIC_OPENBLAS_CORES:
        try:
            with open("/proc/cpuinfo") as f:
                flags = set(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
        except OSError:
            flags = set()
        if {"avx512f", "avx512bw", "avx512vl"} <= flags:
            want = "SkylakeX"
        elif {"avx2", "fma"} <= flags:
            want = "Haswell"
    if want:
        os.environ["OPENBLAS_CORETYPE"] = want
        changed = True
    if changed:
        os.environ["CIRCUITSCOPE_KEEP_ENV"] = "1"  # never loop
        os.execv(sys.executable, [sys.executable] + sys.argv)


if __name__ == "__main__":
    ensure_fast_openblas()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import ref_transformer  # noqa: E402  (config normalisation + checkpoint reading via st_io)


def activation(name):
    """The config's activation as a torch function (gelu_new & co. are the tanh approximation)."""
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: F.gelu(x, approximate="tanh")
    return {"gelu": F.gelu, "silu": F.silu, "swish": F.silu, "relu": F.relu}[name]


class KVCache:
    """Preallocated keys/values per layer: [B, Hkv, capacity, dh]; `length` positions are filled."""

    def __init__(self, n_layers, batch, n_kv_heads, capacity, d_head, dtype=torch.float32):
        self.k = [torch.empty(batch, n_kv_heads, capacity, d_head, dtype=dtype) for _ in range(n_layers)]
        self.v = [torch.empty(batch, n_kv_heads, capacity, d_head, dtype=dtype) for _ in range(n_layers)]
        self.length = 0
        self.capacity = capacity


def attend(q, k, v, offset, layer, cache):
    """q: [B,H,T,dh], k/v: [B,Hkv,T,dh] for the new positions; returns z [B,T,H*dh]."""
    B, H, T, dh = q.shape
    Hkv = k.shape[1]
    if cache is not None:
        cache.k[layer][:, :, offset:offset + T] = k
        cache.v[layer][:, :, offset:offset + T] = v
        k = cache.k[layer][:, :, :offset + T]
        v = cache.v[layer][:, :, :offset + T]
    Tk = k.shape[2]
    G = H // Hkv
    # Grouped-query attention without materialising repeated keys: fold the G query heads that
    # share a kv head into the row dimension of one matmul.
    qg = q.reshape(B, Hkv, G * T, dh)
    scores = torch.matmul(qg, k.transpose(-1, -2)).view(B, H, T, Tk) * (1.0 / math.sqrt(dh))
    if T > 1:
        mask = torch.ones(T, Tk, dtype=torch.bool).triu(offset + 1)
        scores = scores.masked_fill(mask, float("-inf"))
    pattern = F.softmax(scores, dim=-1)
    z = torch.matmul(pattern.view(B, Hkv, G * T, Tk), v).view(B, H, T, dh)
    return z.transpose(1, 2).reshape(B, T, H * dh)


class GPT2Block(nn.Module):
    def __init__(self, w, p, cfg):
        super().__init__()
        self.cfg = cfg
        P = lambda t: nn.Parameter(t, requires_grad=False)  # noqa: E731
        self.ln1_w, self.ln1_b = P(w[p + "ln_1.weight"]), P(w[p + "ln_1.bias"])
        # Conv1D keeps [in, out]; F.linear wants nn.Linear's [out, in], so transpose once at load.
        self.qkv_w, self.qkv_b = P(w[p + "attn.c_attn.weight"].t().contiguous()), P(w[p + "attn.c_attn.bias"])
        self.o_w, self.o_b = P(w[p + "attn.c_proj.weight"].t().contiguous()), P(w[p + "attn.c_proj.bias"])
        self.ln2_w, self.ln2_b = P(w[p + "ln_2.weight"]), P(w[p + "ln_2.bias"])
        self.fc_w, self.fc_b = P(w[p + "mlp.c_fc.weight"].t().contiguous()), P(w[p + "mlp.c_fc.bias"])
        self.proj_w, self.proj_b = P(w[p + "mlp.c_proj.weight"].t().contiguous()), P(w[p + "mlp.c_proj.bias"])
        self.act = activation(cfg["act"])

    def forward(self, x, offset, layer, cache):
        c = self.cfg
        B, T, d = x.shape
        H, dh = c["n_heads"], c["d_head"]
        h = F.layer_norm(x, (d,), self.ln1_w, self.ln1_b, c["eps"])
        qkv = F.linear(h, self.qkv_w, self.qkv_b).view(B, T, 3, H, dh)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # [B,H,T,dh]
        x = x + F.linear(attend(q, k, v, offset, layer, cache), self.o_w, self.o_b)
        h = F.layer_norm(x, (d,), self.ln2_w, self.ln2_b, c["eps"])
        return x + F.linear(self.act(F.linear(h, self.fc_w, self.fc_b)), self.proj_w, self.proj_b)


class LlamaBlock(nn.Module):
    def __init__(self, w, p, cfg):
        super().__init__()
        self.cfg = cfg
        P = lambda t: nn.Parameter(t, requires_grad=False)  # noqa: E731
        self.ln1_w = P(w[p + "input_layernorm.weight"])
        self.q_w, self.k_w = P(w[p + "self_attn.q_proj.weight"]), P(w[p + "self_attn.k_proj.weight"])
        self.v_w, self.o_w = P(w[p + "self_attn.v_proj.weight"]), P(w[p + "self_attn.o_proj.weight"])
        self.ln2_w = P(w[p + "post_attention_layernorm.weight"])
        self.gate_w, self.up_w = P(w[p + "mlp.gate_proj.weight"]), P(w[p + "mlp.up_proj.weight"])
        self.down_w = P(w[p + "mlp.down_proj.weight"])
        self.act = activation(cfg["act"])

    @staticmethod
    def rms(x, w, eps):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    @staticmethod
    def rope(x, cos, sin):
        half = x.shape[-1] // 2
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin

    def forward(self, x, offset, layer, cache, cos, sin):
        c = self.cfg
        B, T, d = x.shape
        H, Hkv, dh = c["n_heads"], c["n_kv_heads"], c["d_head"]
        h = self.rms(x, self.ln1_w, c["eps"])
        q = F.linear(h, self.q_w).view(B, T, H, dh).transpose(1, 2)
        k = F.linear(h, self.k_w).view(B, T, Hkv, dh).transpose(1, 2)
        v = F.linear(h, self.v_w).view(B, T, Hkv, dh).transpose(1, 2)
        q, k = self.rope(q, cos, sin), self.rope(k, cos, sin)
        x = x + F.linear(attend(q, k, v, offset, layer, cache), self.o_w)
        h = self.rms(x, self.ln2_w, c["eps"])
        return x + F.linear(self.act(F.linear(h, self.gate_w)) * F.linear(h, self.up_w), self.down_w)


class Model(nn.Module):
    def __init__(self, model_dir):
        super().__init__()
        raw = json.load(open(os.path.join(model_dir, "config.json")))
        c = self.cfg = ref_transformer.normalize_config(raw)
        prefix = "transformer." if c["arch"] == "gpt2" else "model."
        w = {}
        for name, t in ref_transformer.read_checkpoint(model_dir).items():
            w[name[len(prefix):] if name.startswith(prefix) else name] = t.float()
        P = lambda t: nn.Parameter(t, requires_grad=False)  # noqa: E731
        if c["arch"] == "gpt2":
            self.embed = P(w["wte.weight"])
            self.pos = P(w["wpe.weight"])
            self.blocks = nn.ModuleList(GPT2Block(w, f"h.{L}.", c) for L in range(c["n_layers"]))
            self.lnf_w, self.lnf_b = P(w["ln_f.weight"]), P(w["ln_f.bias"])
        else:
            self.embed = P(w["embed_tokens.weight"])
            self.blocks = nn.ModuleList(LlamaBlock(w, f"layers.{L}.", c) for L in range(c["n_layers"]))
            self.lnf_w = P(w["norm.weight"])
            dh = c["d_head"]
            inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, dh, 2, dtype=torch.float64) / dh))
            angle = torch.arange(c["n_ctx"], dtype=torch.float64)[:, None] * inv_freq[None, :]
            emb = torch.cat((angle, angle), dim=-1)
            self.cos, self.sin = emb.cos().float(), emb.sin().float()
        self.unembed = self.embed if c["tied"] else P(w["lm_head.weight"])

    def forward(self, ids, cache=None, last_only=False):
        c = self.cfg
        B, T = ids.shape
        offset = cache.length if cache is not None else 0
        x = F.embedding(ids, self.embed)
        if c["arch"] == "gpt2":
            x = x + self.pos[offset:offset + T]
            for i, blk in enumerate(self.blocks):
                x = blk(x, offset, i, cache)
            if last_only:
                x = x[:, -1:]
            x = F.layer_norm(x, (c["d_model"],), self.lnf_w, self.lnf_b, c["eps"])
        else:
            cos, sin = self.cos[offset:offset + T], self.sin[offset:offset + T]
            for i, blk in enumerate(self.blocks):
                x = blk(x, offset, i, cache, cos, sin)
            if last_only:
                x = x[:, -1:]
            x = LlamaBlock.rms(x, self.lnf_w, c["eps"])
        if cache is not None:
            cache.length = offset + T
        return F.linear(x, self.unembed)

    def generate(self, prompt, n_new, step_times=None):
        """Greedy decoding with the KV cache; step_times gets the time of each cached step."""
        c = self.cfg
        cache = KVCache(c["n_layers"], 1, c["n_kv_heads"], len(prompt) + n_new, c["d_head"], self.embed.dtype)
        logits = self(torch.tensor([prompt]), cache, last_only=True)
        out = [int(logits[0, -1].argmax())]
        while len(out) < n_new:
            t0 = time.perf_counter()
            logits = self(torch.tensor([[out[-1]]]), cache, last_only=True)
            out.append(int(logits[0, -1].argmax()))
            if step_times is not None:
                step_times.append(time.perf_counter() - t0)
        return out


def median_time(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--dtype", choices=("f32", "bf16"), default="f32",
                    help="bf16: the whole module in bfloat16, as model.to(torch.bfloat16) gives it")
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    with torch.inference_mode():
        t0 = time.perf_counter()
        model = Model(a.model).eval()
        if a.dtype == "bf16":
            model = model.to(torch.bfloat16)
            if hasattr(model, "cos"):
                model.cos, model.sin = model.cos.bfloat16(), model.sin.bfloat16()
        load_s = time.perf_counter() - t0
        c = model.cfg
        V = c["vocab"]
        seq = min(128, c["n_ctx"])
        gen = torch.Generator().manual_seed(1)

        def fwd_rate(B, reps):
            ids = torch.randint(V, (B, seq), generator=gen)
            model(ids)  # warm-up: first-touch of weights, allocator, thread pool
            return B * seq / median_time(lambda: model(ids), reps)

        fwd1 = fwd_rate(1, a.reps)
        fwd8 = fwd_rate(8, max(3, a.reps // 2 + 1))

        n_new = 32
        prompt = [(i * 997) % V for i in range(16)]
        if len(prompt) + n_new > c["n_ctx"]:
            raise SystemExit(f"the model's context ({c['n_ctx']}) is too short for 16 + {n_new} tokens")
        model.generate(prompt, n_new)  # warm-up
        runs = []
        for _ in range(3):
            steps = []
            model.generate(prompt, n_new, steps)
            runs.append(len(steps) / sum(steps))
        decode = statistics.median(runs)

    result = {"fwd_1x128_tok_s": fwd1, "fwd_8x128_tok_s": fwd8, "decode_tok_s": decode, "threads": a.threads,
              "torch": torch.__version__, "arch": c["arch"], "seq": seq, "load_s": load_s,
              "decode_new_tokens": n_new, "blas_core": openblas_core(), "dtype": a.dtype}
    if a.json:
        print(json.dumps(result))
    else:
        print(f"PyTorch {torch.__version__} eager, {c['arch']}, {a.threads} threads, OpenBLAS core "
              f"{result['blas_core'] or '-'} (load {load_s:.2f} s)")
        print(f"  forward 1 x {seq}: {fwd1:10.1f} tokens/s")
        print(f"  forward 8 x {seq}: {fwd8:10.1f} tokens/s")
        print(f"  greedy decode (KV): {decode:9.1f} tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

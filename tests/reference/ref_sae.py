#!/usr/bin/env python3
"""Independent float64 reference for SAE / transcoder files (SAELens, Gemma Scope, Llama Scope).

  ref_sae.py write --out DIR [--seed 0] [--d-in 32] [--d-mlp 128] [--d-sae 48]
      Writes one SAE per format and architecture under DIR (names listed in FOLDERS below), plus
      deliberately broken .npz files under DIR/bad/. Values are drawn in float32 from
      torch.Generator(seed); what is in the files is the SAE (compute reads them back).

  ref_sae.py compute --jobs JOBS.json
      JOBS.json: [{"sae": PATH, "format": "saelens"|"gemmascope"|"llamascope",
                   "input": X.safetensors (tensor "x" [..., d_in]), "out": OUT.safetensors}, ...]
      Writes, in float64: "features" [..., d_sae], "reconstruction" [..., d_out] (decode plus the
      skip term), and "features_folded": the features after rescaling every decoder row to unit norm
      (f_i * ||effective decoder row i||), which leaves the reconstruction unchanged.

The maths follows each format's own definition, not the C++ code under test:
  SAELens (sae_lens/saes/*.py): x' = x - b_dec when apply_b_dec_to_input (never for transcoders);
    standard: relu(x' W_enc + b_enc); jumprelu: relu(pre) * (pre > threshold); topk: the k largest
    pre-activations, relu'd, the rest zero; gated: (x' W_enc + b_gate > 0) *
    relu(x' (W_enc * exp(r_mag)) + b_mag); decode f W_dec + b_dec; skip transcoders add
    x @ W_skip.T with W_skip stored [d_out, d_in]. Files written before 6.0 are flat
    (hook_point, activation_fn_str, activation_fn_kwargs.k; apply_b_dec_to_input defaults to true).
    normalize_activations "expected_average_only_in" multiplies the input by a factor and divides
    the output by it (this reference reads the factor from cfg.json's norm_scaling_factor).
  Gemma Scope (params.npz, DeepMind's tutorial): pre = x W_enc + b_enc; f = (pre > threshold) *
    relu(pre); no b_dec subtraction.
  Llama Scope (hyperparams.json + checkpoints/final.safetensors, OpenMOSS lm_saes): nn.Linear
    weights (encoder.weight [d_sae, d_model], decoder.weight [d_model, d_sae]); dataset-wise
    normalisation scales the input by sqrt(d_model) / norm_in and the output back by
    norm_out / sqrt(d_model); with sparsity_include_decoder_norm the JumpReLU gate is
    pre * ||decoder column|| > jump_relu_threshold and the feature is pre.
"""
import argparse
import io
import json
import math
import os
import struct
import sys
import zipfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

TRANSCODERS = ("transcoder", "skip_transcoder", "jumprelu_transcoder")

# SAELens tensor names per architecture; compute insists on exactly these (as load_state_dict does).
SAELENS_NAMES = {
    "standard": {"W_enc", "W_dec", "b_enc", "b_dec"},
    "topk": {"W_enc", "W_dec", "b_enc", "b_dec"},
    "jumprelu": {"W_enc", "W_dec", "b_enc", "b_dec", "threshold"},
    "gated": {"W_enc", "W_dec", "b_dec", "b_gate", "b_mag", "r_mag"},
    "transcoder": {"W_enc", "W_dec", "b_enc", "b_dec"},
    "skip_transcoder": {"W_enc", "W_dec", "b_enc", "b_dec", "W_skip"},
    "jumprelu_transcoder": {"W_enc", "W_dec", "b_enc", "b_dec", "threshold"},
}


# ------------------------------------------------------------------------------------------ write
class Draw:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def normal(self, shape, std=1.0):
        return torch.randn(*shape, generator=self.g) * std

    def uniform(self, shape, lo, hi):
        return lo + (hi - lo) * torch.rand(*shape, generator=self.g)

    def decoder(self, d_sae, d_out):
        # Rows of varied norm (0.5 .. 2), so decoder-norm folding is not a no-op.
        w = self.normal([d_sae, d_out])
        return w / w.norm(dim=1, keepdim=True) * self.uniform([d_sae, 1], 0.5, 2.0)


def saelens_tensors(arch, d_in, d_sae, d_out, draw):
    t = {"W_enc": draw.normal([d_in, d_sae], 1 / math.sqrt(d_in)),
         "W_dec": draw.decoder(d_sae, d_out),
         "b_dec": draw.normal([d_out], 0.3)}
    if arch == "gated":
        t["b_gate"] = draw.normal([d_sae], 0.3)
        t["b_mag"] = draw.normal([d_sae], 0.3)
        t["r_mag"] = draw.normal([d_sae], 0.2)
    else:
        t["b_enc"] = draw.normal([d_sae], 0.2)
    if arch in ("jumprelu", "jumprelu_transcoder"):
        # Pre-activations are about unit variance: 15-40% of features fire.
        t["threshold"] = draw.uniform([d_sae], 0.25, 1.0)
    if arch == "skip_transcoder":
        t["W_skip"] = draw.normal([d_out, d_in], 1 / math.sqrt(d_in))  # SAELens: [d_out, d_in]
    return t


def write_saelens_v6(folder, arch, hook, d_in, d_sae, draw, d_out=None, hook_out=None, k=None,
                     extra=None, sparsity=False):
    os.makedirs(folder, exist_ok=True)
    d_out = d_out or d_in
    cfg = {"architecture": arch, "d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": arch not in TRANSCODERS, "normalize_activations": "none",
           "reshape_activations": "none",
           "metadata": {"model_name": "random-gpt2", "hook_name": hook, "hook_layer": 0,
                        "context_size": 16, "prepend_bos": True, "sae_lens_version": "6.5.0",
                        "sae_lens_training_version": "6.5.0", "dataset_path": "none"}}
    if k is not None:
        cfg["k"] = k
    if arch in TRANSCODERS:
        cfg["d_out"] = d_out
        cfg["metadata"]["hook_name_out"] = hook_out
    cfg.update(extra or {})
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    st_io.write_safetensors(os.path.join(folder, "sae_weights.safetensors"),
                            saelens_tensors(arch, d_in, d_sae, d_out, draw))
    if sparsity:
        st_io.write_safetensors(os.path.join(folder, "sparsity.safetensors"),
                                {"sparsity": draw.uniform([d_sae], -6.0, -0.5)})


def write_saelens_flat(folder, cfg, arch, d_in, d_sae, draw):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    st_io.write_safetensors(os.path.join(folder, "sae_weights.safetensors"),
                            saelens_tensors(arch, d_in, d_sae, d_in, draw))


def write_gemmascope(folder, d_in, d_sae, draw):
    os.makedirs(folder, exist_ok=True)
    t = saelens_tensors("jumprelu", d_in, d_sae, d_in, draw)
    np.savez(os.path.join(folder, "params.npz"), **{k: v.numpy() for k, v in t.items()})


def write_llamascope(folder, d, d_sae, hook_in, hook_out, norm_in, norm_out, draw):
    os.makedirs(os.path.join(folder, "checkpoints"), exist_ok=True)
    hp = {"d_model": d, "d_sae": d_sae, "expansion_factor": d_sae / d, "hook_point_in": hook_in,
          "hook_point_out": hook_out, "act_fn": "jumprelu", "jump_relu_threshold": 0.4,
          "norm_activation": "dataset-wise",
          "dataset_average_activation_norm": {"in": norm_in, "out": norm_out},
          "use_decoder_bias": True, "apply_decoder_bias_to_pre_encoder": False,
          "sparsity_include_decoder_norm": True, "top_k": 50}
    with open(os.path.join(folder, "hyperparams.json"), "w") as f:
        json.dump(hp, f, indent=1)
    # nn.Linear layout: weight [out_features, in_features].
    t = {"encoder.weight": draw.normal([d_sae, d], 1 / math.sqrt(d)),
         "encoder.bias": draw.normal([d_sae], 0.2),
         "decoder.weight": draw.decoder(d_sae, d).T.contiguous(),
         "decoder.bias": draw.normal([d], 0.3)}
    st_io.write_safetensors(os.path.join(folder, "checkpoints", "final.safetensors"), t)


def npy_bytes(arr, header_text=None, magic=b"\x93NUMPY"):
    """A version-1 .npy file; header_text replaces the dict to make deliberately odd files."""
    header = header_text if header_text is not None else \
        "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (arr.dtype.str, str(tuple(arr.shape)))
    header = header.encode("latin1")
    header += b" " * ((-(10 + len(header) + 1)) % 64) + b"\n"
    return magic + b"\x01\x00" + struct.pack("<H", len(header)) + header + arr.tobytes()


def write_bad_npz(folder, d_in, d_sae, draw):
    os.makedirs(folder, exist_ok=True)
    good = {k: v.numpy() for k, v in saelens_tensors("jumprelu", d_in, d_sae, d_in, draw).items()}

    def with_entry(name, entry_bytes):
        with zipfile.ZipFile(os.path.join(folder, name), "w") as z:
            for k, v in good.items():
                z.writestr(k + ".npy", entry_bytes if k == "W_enc" else npy_bytes(v))

    def numpy_npy(arr):
        buf = io.BytesIO()
        np.lib.format.write_array(buf, arr)  # numpy's writer: Fortran order for a Fortran array
        return buf.getvalue()

    w = good["W_enc"]
    with_entry("fortran.npz", numpy_npy(np.asfortranarray(w)))
    with_entry("dtype.npz", numpy_npy(w.astype(np.complex64)))
    with_entry("truncated.npz", npy_bytes(w)[:-40])
    with_entry("magic.npz", npy_bytes(w, magic=b"\x93NUMPZ"))
    # numpy's own writer, for contrast: float64 and float16 must load.
    np.savez(os.path.join(folder, "f64.npz"), **{k: v.astype(np.float64) for k, v in good.items()})
    np.savez_compressed(os.path.join(folder, "f16z.npz"), **{k: v.astype(np.float16) for k, v in good.items()})
    np.savez(os.path.join(folder, "nothreshold.npz"), **{k: v for k, v in good.items() if k != "threshold"})


FOLDERS = {
    # folder written by `write` -> its format (printed as JSON by `write`)
    "saelens_standard": "saelens", "saelens_jumprelu": "saelens", "saelens_topk": "saelens",
    "saelens_gated": "saelens", "saelens_transcoder": "saelens", "saelens_skip_transcoder": "saelens",
    "saelens_jumprelu_transcoder": "saelens", "saelens_flat": "saelens", "saelens_flat_topk": "saelens",
    "saelens_normscale": "saelens", "gemma-scope-res/layer_0/width_1k/average_l0_9": "gemmascope",
    "llamascope": "llamascope", "llamascope_tc": "llamascope",
}


def cmd_write(a):
    draw = Draw(a.seed)
    d, m, s, out = a.d_in, a.d_mlp, a.d_sae, a.out
    resid = "blocks.0.hook_resid_post"
    write_saelens_v6(os.path.join(out, "saelens_standard"), "standard", resid, d, s, draw, sparsity=True)
    write_saelens_v6(os.path.join(out, "saelens_jumprelu"), "jumprelu", resid, d, s, draw)
    write_saelens_v6(os.path.join(out, "saelens_topk"), "topk", resid, d, s, draw, k=6)
    write_saelens_v6(os.path.join(out, "saelens_gated"), "gated", resid, d, s, draw)
    write_saelens_v6(os.path.join(out, "saelens_transcoder"), "transcoder", "blocks.0.ln2.hook_normalized", d, s,
                     draw, hook_out="blocks.0.hook_mlp_out")
    # Reads the MLP's hidden layer (d_mlp wide) and predicts its output (d_model): W_skip is not square.
    write_saelens_v6(os.path.join(out, "saelens_skip_transcoder"), "skip_transcoder", "blocks.0.mlp.hook_post", m, s,
                     draw, d_out=d, hook_out="blocks.0.hook_mlp_out")
    write_saelens_v6(os.path.join(out, "saelens_jumprelu_transcoder"), "jumprelu_transcoder",
                     "blocks.1.ln2.hook_normalized", d, s, draw, hook_out="blocks.1.hook_mlp_out")
    write_saelens_v6(os.path.join(out, "saelens_normscale"), "standard", resid, d, s, draw,
                     extra={"normalize_activations": "expected_average_only_in", "norm_scaling_factor": 1.7})
    write_saelens_flat(os.path.join(out, "saelens_flat"),
                       {"model_name": "gpt2-small", "hook_point": resid, "hook_point_layer": 0, "d_in": d,
                        "d_sae": s, "activation_fn_str": "relu", "dtype": "float32", "context_size": 128,
                        "prepend_bos": True, "normalize_activations": False,
                        "sae_lens_training_version": "2.1.3"}, "standard", d, s, draw)
    write_saelens_flat(os.path.join(out, "saelens_flat_topk"),
                       {"model_name": "gpt2-small", "hook_name": resid, "hook_layer": 0, "d_in": d, "d_sae": s,
                        "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 7},
                        "apply_b_dec_to_input": False, "dtype": "float32", "sae_lens_version": "5.3.0"},
                       "topk", d, s, draw)
    write_gemmascope(os.path.join(out, "gemma-scope-res/layer_0/width_1k/average_l0_9"), d, s, draw)
    write_llamascope(os.path.join(out, "llamascope"), d, s, resid, resid, 4.0, 4.0, draw)
    write_llamascope(os.path.join(out, "llamascope_tc"), d, s, "blocks.0.ln2.hook_normalized",
                     "blocks.0.hook_mlp_out", 5.0, 2.0, draw)
    write_bad_npz(os.path.join(out, "bad"), d, s, draw)
    print(json.dumps(FOLDERS))


# ---------------------------------------------------------------------------------------- compute
def load_saelens(folder):
    with open(os.path.join(folder, "cfg.json")) as f:
        cfg = json.load(f)
    act = cfg.get("activation_fn_str", cfg.get("activation_fn", "relu"))
    arch = cfg.get("architecture", "standard")
    if arch == "standard" and act == "topk":
        arch = "topk"
    w = {k: v.double() for k, v in st_io.read_safetensors(os.path.join(folder, "sae_weights.safetensors")).items()}
    if set(w) != SAELENS_NAMES[arch]:
        raise SystemExit(f"{folder}: tensors {sorted(w)} are not SAELens' {sorted(SAELENS_NAMES[arch])} for {arch}")
    d_in, d_sae = cfg["d_in"], cfg["d_sae"]
    d_out = cfg["d_out"] if arch in TRANSCODERS else d_in
    shapes = {"W_enc": [d_in, d_sae], "W_dec": [d_sae, d_out], "b_enc": [d_sae], "b_dec": [d_out],
              "threshold": [d_sae], "b_gate": [d_sae], "b_mag": [d_sae], "r_mag": [d_sae], "W_skip": [d_out, d_in]}
    for k, v in w.items():
        if list(v.shape) != shapes[k]:
            raise SystemExit(f"{folder}: {k} has shape {list(v.shape)}, SAELens expects {shapes[k]}")
    k = cfg.get("k") or (cfg.get("activation_fn_kwargs") or {}).get("k")
    apply_b_dec = cfg.get("apply_b_dec_to_input", True) and arch not in TRANSCODERS
    norm = cfg.get("normalize_activations", "none")
    scale = cfg["norm_scaling_factor"] if norm in ("expected_average_only_in", True) else 1.0

    def encode(x):
        x = x * scale
        if apply_b_dec:
            x = x - w["b_dec"]
        if arch == "gated":
            gate = (x @ w["W_enc"] + w["b_gate"]) > 0
            return gate.double() * torch.relu(x @ (w["W_enc"] * torch.exp(w["r_mag"])) + w["b_mag"])
        pre = x @ w["W_enc"] + w["b_enc"]
        if arch in ("jumprelu", "jumprelu_transcoder"):
            return torch.relu(pre) * (pre > w["threshold"]).double()
        if arch == "topk":
            top = torch.topk(pre, k, dim=-1)
            return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
        return torch.relu(pre)

    def reconstruct(x, f):
        out = (f @ w["W_dec"] + w["b_dec"]) / scale
        if arch == "skip_transcoder":
            out = out + x @ w["W_skip"].T
        return out

    return encode, reconstruct, w["W_dec"] / scale


def load_gemmascope(path):
    if os.path.isdir(path):
        path = os.path.join(path, "params.npz")
    with np.load(path) as z:
        w = {k: torch.from_numpy(z[k]).double() for k in z.files}

    def encode(x):
        pre = x @ w["W_enc"] + w["b_enc"]
        return (pre > w["threshold"]).double() * torch.relu(pre)

    return encode, lambda x, f: f @ w["W_dec"] + w["b_dec"], w["W_dec"]


def load_llamascope(folder):
    with open(os.path.join(folder, "hyperparams.json")) as f:
        hp = json.load(f)
    w = {k: v.double() for k, v in
         st_io.read_safetensors(os.path.join(folder, "checkpoints", "final.safetensors")).items()}
    root = math.sqrt(hp["d_model"])
    s_in = root / hp["dataset_average_activation_norm"]["in"]
    s_out = root / hp["dataset_average_activation_norm"]["out"]
    dec_norm = w["decoder.weight"].norm(dim=0)  # one per feature (column of the [d_model, d_sae] weight)

    def encode(x):
        pre = (x * s_in) @ w["encoder.weight"].T + w["encoder.bias"]
        return pre * ((pre * dec_norm) > hp["jump_relu_threshold"]).double()

    def reconstruct(x, f):
        return (f @ w["decoder.weight"].T + w["decoder.bias"]) / s_out

    return encode, reconstruct, w["decoder.weight"].T / s_out


def cmd_compute(a):
    with open(a.jobs) as f:
        jobs = json.load(f)
    for job in jobs:
        loader = {"saelens": load_saelens, "gemmascope": load_gemmascope, "llamascope": load_llamascope}[job["format"]]
        encode, reconstruct, effective_decoder = loader(job["sae"])
        x = st_io.read_safetensors(job["input"])["x"].double()
        f = encode(x)
        norms = effective_decoder.norm(dim=1)
        folded = f * torch.where(norms > 0, norms, torch.ones_like(norms))
        st_io.write_safetensors(job["out"], {"features": f, "reconstruction": reconstruct(x, f),
                                             "features_folded": folded}, dtype="F64")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--out", required=True)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--d-in", type=int, default=32)
    w.add_argument("--d-mlp", type=int, default=128)
    w.add_argument("--d-sae", type=int, default=48)
    c = sub.add_parser("compute")
    c.add_argument("--jobs", required=True)
    a = p.parse_args()
    torch.set_grad_enabled(False)
    (cmd_write if a.cmd == "write" else cmd_compute)(a)


if __name__ == "__main__":
    main()

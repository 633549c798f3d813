"""Copies a model folder and multiplies named tensors of its model.safetensors by a factor.

A fine-tune with a known cause, for the model-diff tests: only the scaled layer (and what reads
it) may move. Written with st_io, never through the C++ code under test.

usage: scale_tensor.py --model DIR --out DIR --tensor NAME [--tensor NAME ...] --factor F
"""
import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_io import read_safetensors, write_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tensor", action="append", required=True)
    ap.add_argument("--factor", type=float, required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in os.listdir(args.model):
        if name != "model.safetensors":
            shutil.copy(os.path.join(args.model, name), os.path.join(args.out, name))
    tensors = read_safetensors(os.path.join(args.model, "model.safetensors"))
    for name in args.tensor:
        if name not in tensors:
            sys.exit(f"{name}: no such tensor")
        tensors[name] = tensors[name] * args.factor
    write_safetensors(os.path.join(args.out, "model.safetensors"), tensors, dtype="F32")


if __name__ == "__main__":
    main()

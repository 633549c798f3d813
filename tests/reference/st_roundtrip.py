#!/usr/bin/env python3
"""Cross-checks our safetensors reader/writer with the independent Python one (st_io).

  st_roundtrip.py write DIR   -> writes DIR/{f32,f16,bf16}.safetensors, prints their values as JSON
  st_roundtrip.py read FILE   -> prints {name: {"shape": [...], "data": [...]}} as float64
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402


def dump(tensors):
    return {k: {"shape": list(v.shape), "data": v.double().flatten().tolist()} for k, v in tensors.items()}


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "write":
        g = torch.Generator().manual_seed(123)
        base = {"a.weight": torch.randn(3, 5, generator=g), "b": torch.randn(7, generator=g) * 100,
                "scalarish": torch.tensor([1.0 / 3.0])}
        out = {}
        for dt in ("F32", "F16", "BF16"):
            f = os.path.join(path, dt.lower() + ".safetensors")
            st_io.write_safetensors(f, base, dtype=dt, metadata={"format": "pt"})
            # what the file really holds, decoded by st_io, is the truth for the C++ side
            out[dt] = dump(st_io.read_safetensors(f))
        print(json.dumps(out))
    else:
        print(json.dumps(dump(st_io.read_safetensors(path))))


if __name__ == "__main__":
    main()

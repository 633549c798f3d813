"""A small, dependency-free safetensors reader and writer (stdlib + numpy + torch only).

It exists so that the Python references never go through the C++ code they are checking, and so
that no `safetensors` package is needed on the test machines.

File layout (https://github.com/huggingface/safetensors, "Format"):
  * 8 bytes: N, the header length, unsigned 64-bit little-endian;
  * N bytes: a UTF-8 JSON object {name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}}
    plus an optional "__metadata__": {str: str};
  * the raw little-endian, C-order tensor data; offsets count from the first byte after the header.

API:
  read_safetensors(path, with_metadata=False) -> {name: torch.Tensor} (or (tensors, metadata))
  read_header(path) -> (header dict without __metadata__, metadata dict, data start offset)
  write_safetensors(path, tensors, dtype="F32", metadata=None)
"""
import json
import mmap
import struct

import numpy as np
import torch

# safetensors dtype name -> (numpy dtype used to decode the bytes, torch dtype of the result).
# numpy has no bfloat16, so BF16 is decoded as raw 16-bit words and reinterpreted by torch.
_DECODE = {
    "F64": (np.dtype("<f8"), torch.float64),
    "F32": (np.dtype("<f4"), torch.float32),
    "F16": (np.dtype("<f2"), torch.float16),
    "BF16": (np.dtype("<i2"), torch.bfloat16),
    "I64": (np.dtype("<i8"), torch.int64),
    "I32": (np.dtype("<i4"), torch.int32),
    "I16": (np.dtype("<i2"), torch.int16),
    "I8": (np.dtype("i1"), torch.int8),
    "U8": (np.dtype("u1"), torch.uint8),
    "BOOL": (np.dtype("u1"), torch.bool),
}

_TORCH_TO_NAME = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}

_NAME_TO_TORCH = {name: td for name, (_, td) in _DECODE.items()}


def _parse_header(raw, path):
    if len(raw) < 8:
        raise ValueError(f"{path}: too short to be a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(bytes(raw[8:8 + n]).decode("utf-8"))
    metadata = header.pop("__metadata__", None) or {}
    return header, metadata, 8 + n


def read_header(path):
    """(tensor entries, metadata, byte offset where the data starts) without reading the data."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(0)
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: too short to be a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if 8 + n > size:
            raise ValueError(f"{path}: header length {n} runs past the end of the file")
        return _parse_header(head + f.read(n), path)


class _Nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def read_safetensors(path, with_metadata=False):
    """Every tensor in the file as a torch.Tensor with the stored dtype (BF16 stays bfloat16).

    The file is memory-mapped and each tensor copied out once, so a large checkpoint costs about
    its own size in memory, and the returned tensors are ordinary, aligned, writable tensors.
    """
    tensors = {}
    header, metadata, start = read_header(path)
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        data_len = size - start
        # mmap refuses empty files; a file with only a header and no tensors is still valid.
        with (mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if header else _Nothing()) as mm:
            for name, entry in header.items():
                dtype_name = entry["dtype"]
                if dtype_name not in _DECODE:
                    raise ValueError(f"{path}: tensor {name} has unsupported dtype {dtype_name}")
                np_dtype, torch_dtype = _DECODE[dtype_name]
                shape = [int(s) for s in entry["shape"]]
                begin, end = (int(o) for o in entry["data_offsets"])
                count = int(np.prod(shape)) if shape else 1
                if end - begin != count * np_dtype.itemsize or begin < 0 or end > data_len:
                    raise ValueError(f"{path}: tensor {name} has offsets {begin}..{end} that do not fit "
                                     f"shape {shape} x {dtype_name} or the {data_len}-byte data section")
                # .copy() detaches the array from the mapping and gives it proper alignment.
                arr = np.frombuffer(mm, dtype=np_dtype, count=count, offset=start + begin).copy()
                t = torch.from_numpy(arr)
                if torch_dtype == torch.bfloat16:
                    t = t.view(torch.bfloat16)  # same 16 bits, reinterpreted
                elif torch_dtype == torch.bool:
                    t = t.to(torch.bool)
                tensors[name] = t.reshape(shape)
    return (tensors, metadata) if with_metadata else tensors


def _to_bytes(t):
    """Little-endian C-order bytes of a CPU tensor (the machines we care about are little-endian)."""
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)  # numpy cannot hold bfloat16; the bit pattern is what we store
    elif t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """Write {name: tensor} to `path`.

    dtype: "F32", "F16", "BF16" (or "F64") converts every floating-point tensor to that type
    (torch's round-to-nearest-even); None keeps each tensor's own dtype. Integer and bool tensors
    are always written as they are. Tensors are laid out in the order given.
    """
    if dtype is not None and dtype not in ("F64", "F32", "F16", "BF16"):
        raise ValueError(f"unsupported dtype {dtype!r}")
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        t = torch.as_tensor(t)
        if dtype is not None and t.is_floating_point():
            t = t.to(_NAME_TO_TORCH[dtype])
        if t.dtype not in _TORCH_TO_NAME:
            raise ValueError(f"tensor {name}: unsupported dtype {t.dtype}")
        blob = _to_bytes(t)
        header[name] = {"dtype": _TORCH_TO_NAME[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}, **header}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Spaces after the JSON are allowed; they make the data start on an 8-byte boundary.
    text += b" " * ((-(8 + len(text))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    return offset  # bytes of tensor data, handy for an index's total_size

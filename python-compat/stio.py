"""Safetensors files with numpy alone (struct + json + numpy), for machines without torch or safetensors.

read(path) -> (tensors, metadata): tensors maps a name to a numpy array; BF16 becomes float32 (exact, through a
uint16 shift) unless raw_bf16=True (then uint16 bit patterns); F16 stays float16; metadata is the
__metadata__ dict of strings. write(path, tensors, metadata) writes numpy arrays (float32 is written as F32 unless
the name is listed in bf16_names, which are rounded to BF16).
"""

import json
import struct

import numpy as np

_DTYPES = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16, "F16": np.float16,
    "BF16": np.uint16, "I32": np.int32, "U32": np.uint32, "F32": np.float32, "F64": np.float64, "I64": np.int64,
    "U64": np.uint64,
}
_NAMES = {np.dtype(np.bool_): "BOOL", np.dtype(np.uint8): "U8", np.dtype(np.int8): "I8", np.dtype(np.int16): "I16",
          np.dtype(np.uint16): "U16", np.dtype(np.float16): "F16", np.dtype(np.int32): "I32",
          np.dtype(np.uint32): "U32", np.dtype(np.float32): "F32", np.dtype(np.float64): "F64",
          np.dtype(np.int64): "I64", np.dtype(np.uint64): "U64"}


class FormatError(ValueError):
    pass


def read_header(path):
    """(header dict without __metadata__, metadata dict, data offset) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise FormatError("%s: too short for a safetensors file" % path)
        (n,) = struct.unpack("<Q", raw)
        if n > 100_000_000:
            raise FormatError("%s: header length %d is implausible" % (path, n))
        header = json.loads(f.read(n).decode("utf-8"))
    if not isinstance(header, dict):
        raise FormatError("%s: header is not a JSON object" % path)
    meta = header.pop("__metadata__", None) or {}
    return header, meta, 8 + n


def read(path, raw_bf16=False):
    header, meta, start = read_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    out = {}
    for name, info in header.items():
        dt = info["dtype"]
        if dt not in _DTYPES:
            raise FormatError("%s: tensor %s has dtype %s, which this reader does not know" % (path, name, dt))
        b, e = info["data_offsets"]
        if not 0 <= b <= e <= len(data):
            raise FormatError("%s: tensor %s has data offsets %s outside the data section" % (path, name, [b, e]))
        arr = np.frombuffer(data[b:e], dtype=np.dtype(_DTYPES[dt]).newbyteorder("<")).reshape(info["shape"])
        if dt == "BF16" and not raw_bf16:
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.astype(arr.dtype.newbyteorder("="))
    return out, meta


def dtypes(path):
    """Tensor name -> safetensors dtype string."""
    header, _, _ = read_header(path)
    return {k: v["dtype"] for k, v in header.items()}


def write(path, tensors, metadata=None, bf16_names=()):
    """Writes numpy arrays; names in bf16_names are rounded from float to BF16."""
    from reference import f32_to_bf16_bits
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        if name in bf16_names:
            dt, arr = "BF16", f32_to_bf16_bits(arr.astype(np.float32))
        else:
            dt = _NAMES[arr.dtype]
        blob = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for blob in blobs:
            f.write(blob)

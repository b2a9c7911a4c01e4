"""Float64 reference of flashinfer4j's semantic contract (docs/SPEC.md), in PyTorch or numpy.

Every function takes its tensors either as torch tensors (computed in torch.float64 on the tensors' device) or as
numpy arrays (computed in numpy float64): the same code runs on both, through a small array-module shim, so
compare.py can recompute a reference with numpy alone and the two backends check each other (see selftest()).
Inputs may be in any float dtype (bf16/fp16 are widened exactly); index arrays are int32/int64.

Conventions (SPEC.md):
  * pos_q(i) = i + kv_len - qo_len; causal is bottom-right aligned; window_left w >= 0 keeps j >= pos_q(i) - w;
  * logits x = (q . k) * sm_scale (default 1/sqrt(D)), then cap * tanh(x / cap) when logits_soft_cap > 0;
  * lse = log2(sum exp(x)) over the allowed keys (BASE 2); a row that sees nothing gives o = 0 and lse = -inf;
  * RoPE (pos_encoding "ROPE_LLAMA") rotates q (position pos_q) and k (position j) inside attention, rotate-half
    over the full head dim, freq_j = theta^(-2j/D) / rope_scale;
  * a custom mask (True = keep) replaces causal; the window still applies. Masks of several requests are
    concatenated row-major [qo_len, kv_len] blocks; the packed form is little-endian bits, one byte-padded
    segment per request (pack_mask / segment_pack_mask / unpack_segment_mask).

Public functions return float64 results: attention outputs (o, lse), merges (v, s).
"""

import math

import numpy as np

__all__ = [
    "attention", "single_decode", "single_prefill", "batch_decode_paged", "batch_prefill_paged",
    "batch_prefill_ragged", "merge_state", "merge_states", "gather_pages", "kv_lens_from_page_table",
    "mask_indptr", "pack_mask", "segment_pack_mask", "unpack_segment_mask", "causal_mask", "tree_mask",
    "bf16_bits_to_f32", "f32_to_bf16_bits", "selftest",
]

LOG2E = 1.0 / math.log(2.0)


# ---------------------------------------------------------------------------------------------------------------
# Array-module shim: numpy or torch, float64


def _is_torch(x):
    return type(x).__module__.split(".")[0] == "torch"


class _NumpyOps:
    name = "numpy"

    def f64(self, x):
        if x.dtype == np.uint16:  # raw bf16 bits
            return bf16_bits_to_f32(x).astype(np.float64)
        return np.asarray(x, dtype=np.float64)

    def ints(self, x):
        return [int(v) for v in np.asarray(x).reshape(-1)]

    def bools(self, x):
        return np.asarray(x).astype(bool)

    def arange(self, n):
        return np.arange(n, dtype=np.float64)

    def zeros(self, shape):
        return np.zeros(shape, dtype=np.float64)

    def full(self, shape, value):
        return np.full(shape, value, dtype=np.float64)

    def einsum(self, eq, *xs):
        return np.einsum(eq, *xs)

    def exp(self, x):
        return np.exp(x)

    def exp2(self, x):
        return np.exp2(x)

    def log2(self, x):
        with np.errstate(divide="ignore"):
            return np.log2(x)

    def tanh(self, x):
        return np.tanh(x)

    def cos(self, x):
        return np.cos(x)

    def sin(self, x):
        return np.sin(x)

    def where(self, cond, a, b):
        return np.where(cond, a, b)

    def amax(self, x, axis, keepdims=False):
        return np.max(x, axis=axis, keepdims=keepdims)

    def sum(self, x, axis, keepdims=False):
        return np.sum(x, axis=axis, keepdims=keepdims)

    def cat(self, xs, axis):
        return np.concatenate(xs, axis=axis)

    def repeat(self, x, g, axis):
        return np.repeat(x, g, axis=axis)

    def swap(self, x, a, b):
        return np.swapaxes(x, a, b)

    def index(self, x, idx):
        return x[np.asarray(idx, dtype=np.int64)]

    def isfinite(self, x):
        return np.isfinite(x)

    def mask_from(self, rows):  # python list of lists of bool -> bool array
        return np.asarray(rows, dtype=bool)

    def logical_and(self, a, b):
        return np.logical_and(a, b)

    def ones_bool(self, shape):
        return np.ones(shape, dtype=bool)


class _TorchOps:
    name = "torch"

    def __init__(self, device):
        import torch
        self.t = torch
        self.device = device

    def f64(self, x):
        return x.to(device=self.device, dtype=self.t.float64)

    def ints(self, x):
        if _is_torch(x):
            return [int(v) for v in x.reshape(-1).tolist()]
        return [int(v) for v in np.asarray(x).reshape(-1)]

    def bools(self, x):
        if _is_torch(x):
            return x.to(device=self.device, dtype=self.t.bool)
        return self.t.as_tensor(np.asarray(x).astype(bool), device=self.device)

    def arange(self, n):
        return self.t.arange(n, dtype=self.t.float64, device=self.device)

    def zeros(self, shape):
        return self.t.zeros(shape, dtype=self.t.float64, device=self.device)

    def full(self, shape, value):
        return self.t.full(shape, value, dtype=self.t.float64, device=self.device)

    def einsum(self, eq, *xs):
        return self.t.einsum(eq, *xs)

    def exp(self, x):
        return self.t.exp(x)

    def exp2(self, x):
        return self.t.exp2(x)

    def log2(self, x):
        return self.t.log2(x)

    def tanh(self, x):
        return self.t.tanh(x)

    def cos(self, x):
        return self.t.cos(x)

    def sin(self, x):
        return self.t.sin(x)

    def where(self, cond, a, b):
        t = self.t
        a = a if _is_torch(a) else t.tensor(a, dtype=t.float64, device=self.device)
        b = b if _is_torch(b) else t.tensor(b, dtype=t.float64, device=self.device)
        return t.where(cond, a, b)

    def amax(self, x, axis, keepdims=False):
        return self.t.amax(x, dim=axis, keepdim=keepdims)

    def sum(self, x, axis, keepdims=False):
        return self.t.sum(x, dim=axis, keepdim=keepdims)

    def cat(self, xs, axis):
        return self.t.cat(xs, dim=axis)

    def repeat(self, x, g, axis):
        return self.t.repeat_interleave(x, g, dim=axis)

    def swap(self, x, a, b):
        return self.t.transpose(x, a, b)

    def index(self, x, idx):
        return x[self.t.as_tensor(list(idx), dtype=self.t.long, device=x.device)]

    def isfinite(self, x):
        return self.t.isfinite(x)

    def mask_from(self, rows):
        return self.t.as_tensor(np.asarray(rows, dtype=bool), device=self.device)

    def logical_and(self, a, b):
        return self.t.logical_and(a, b)

    def ones_bool(self, shape):
        return self.t.ones(shape, dtype=self.t.bool, device=self.device)


def _ops(x):
    if _is_torch(x):
        return _TorchOps(x.device)
    return _NumpyOps()


# ---------------------------------------------------------------------------------------------------------------
# bf16 bits <-> float32 with numpy (for readers without torch)


def bf16_bits_to_f32(bits):
    """uint16 bf16 patterns -> float32 (exact)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """float32 -> uint16 bf16 patterns, round to nearest even; NaN stays a (quiet) NaN."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    return np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), rounded)


# ---------------------------------------------------------------------------------------------------------------
# Masks


def mask_indptr(qo_lens, kv_lens):
    """Element offsets of each request's [qo_len, kv_len] block in a concatenated mask."""
    out = [0]
    for q, k in zip(qo_lens, kv_lens):
        out.append(out[-1] + int(q) * int(k))
    return out


def pack_mask(mask):
    """Flat bool mask -> uint8, little-endian bits (element o is bit o % 8 of byte o // 8), zero-padded."""
    return np.packbits(np.asarray(mask, dtype=bool).reshape(-1), bitorder="little")


def segment_pack_mask(mask, indptr):
    """Packs each request's segment mask[indptr[b]:indptr[b+1]] separately, each padded to a whole byte.

    Returns (packed uint8, byte_indptr) where byte_indptr[b] is the byte offset of request b (what FlashInfer's
    segment_packbits(..., bitorder="little") returns and what its kernels add as the request's mask offset)."""
    mask = np.asarray(mask, dtype=bool).reshape(-1)
    parts, byte_indptr = [], [0]
    for b in range(len(indptr) - 1):
        seg = pack_mask(mask[int(indptr[b]):int(indptr[b + 1])])
        parts.append(seg)
        byte_indptr.append(byte_indptr[-1] + len(seg))
    packed = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)
    return packed.astype(np.uint8), byte_indptr


def unpack_segment_mask(packed, byte_indptr, lengths):
    """Inverse of segment_pack_mask: lengths[b] = qo_len * kv_len of request b. Returns a flat bool array."""
    packed = np.asarray(packed, dtype=np.uint8).reshape(-1)
    out = []
    for b, n in enumerate(lengths):
        seg = packed[int(byte_indptr[b]):int(byte_indptr[b + 1])]
        out.append(np.unpackbits(seg, bitorder="little")[: int(n)].astype(bool))
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)


def causal_mask(qo_len, kv_len):
    """The bottom-right causal mask [qo_len, kv_len] as bool (numpy)."""
    pos_q = np.arange(qo_len)[:, None] + kv_len - qo_len
    return np.arange(kv_len)[None, :] <= pos_q


def tree_mask(qo_len, kv_len, rng):
    """A speculative-decoding tree mask [qo_len, kv_len] (numpy bool): every query sees the prefix
    (the first kv_len - qo_len keys); among the qo_len draft tokens, token i sees itself and its ancestors in a
    random tree (parent(i) < i)."""
    prefix = kv_len - qo_len
    assert prefix >= 0, "a tree mask needs kv_len >= qo_len"
    m = np.zeros((qo_len, kv_len), dtype=bool)
    m[:, :prefix] = True
    parent = [-1] + [int(rng.integers(0, i)) for i in range(1, qo_len)]
    for i in range(qo_len):
        j = i
        while j >= 0:
            m[i, prefix + j] = True
            j = parent[j]
    return m


# ---------------------------------------------------------------------------------------------------------------
# Attention


def _rope(ops, x, positions, rope_scale, rope_theta):
    """Rotate-half RoPE over the full head dim; x [n, H, D] float64, positions float64 [n]."""
    d = x.shape[-1]
    half = d // 2
    j = ops.arange(half)
    inv_freq = ops.exp(j * (-2.0 / d) * math.log(rope_theta)) / rope_scale  # theta^(-2j/D) / scale
    ang = ops.einsum("n,f->nf", positions, inv_freq)[:, None, :]  # [n, 1, half]
    c, s = ops.cos(ang), ops.sin(ang)
    x1, x2 = x[..., :half], x[..., half:]
    return ops.cat([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


def attention(q, k, v, *, causal=False, custom_mask=None, window_left=-1, logits_soft_cap=None, sm_scale=None,
              pos_encoding="NONE", rope_scale=1.0, rope_theta=1e4):
    """Attention of one request: q [qo_len, H_qo, D], k and v [kv_len, H_kv, D] (NHD).

    custom_mask: bool [qo_len, kv_len] (or flat, row-major), True = keep; replaces causal.
    Returns (o [qo_len, H_qo, D], lse [qo_len, H_qo]) in float64, lse base 2."""
    ops = _ops(q)
    q, k, v = ops.f64(q), ops.f64(k), ops.f64(v)
    qo_len, h_qo, d = q.shape
    kv_len, h_kv = k.shape[0], k.shape[1]
    if h_qo % h_kv != 0:
        raise ValueError("num_qo_heads %d is not a multiple of num_kv_heads %d" % (h_qo, h_kv))
    if k.shape[2] != d or tuple(v.shape) != tuple(k.shape):
        raise ValueError("k/v shapes %s/%s do not match q %s" % (tuple(k.shape), tuple(v.shape), tuple(q.shape)))
    scale = 1.0 / math.sqrt(d) if sm_scale is None else float(sm_scale)
    pos_q = ops.arange(qo_len) + float(kv_len - qo_len)
    pos_k = ops.arange(kv_len)
    if pos_encoding in ("ROPE_LLAMA", 1):
        q = _rope(ops, q, pos_q, float(rope_scale), float(rope_theta))
        k = _rope(ops, k, pos_k, float(rope_scale), float(rope_theta))
    elif pos_encoding not in ("NONE", 0, None):
        raise ValueError("unsupported pos_encoding %r" % (pos_encoding,))
    g = h_qo // h_kv
    if g > 1:
        k = ops.repeat(k, g, axis=1)
        v = ops.repeat(v, g, axis=1)
    x = ops.einsum("qhd,khd->hqk", q, k) * scale
    if logits_soft_cap is not None and float(logits_soft_cap) > 0:
        cap = float(logits_soft_cap)
        x = cap * ops.tanh(x / cap)
    if custom_mask is not None:
        allowed = ops.bools(custom_mask).reshape(qo_len, kv_len)
    elif causal:
        allowed = pos_k[None, :] <= pos_q[:, None]
    else:
        allowed = ops.ones_bool((qo_len, kv_len))
    if window_left is not None and int(window_left) >= 0:
        allowed = ops.logical_and(allowed, pos_k[None, :] >= pos_q[:, None] - int(window_left))
    x = ops.where(allowed[None, :, :], x, -math.inf)
    if kv_len == 0:
        m = ops.full((h_qo, qo_len, 1), -math.inf)
    else:
        m = ops.amax(x, axis=2, keepdims=True)  # [h, q, 1]
    m_safe = ops.where(ops.isfinite(m), m, 0.0)
    p = ops.exp(x - m_safe)  # masked -> 0
    s = ops.sum(p, axis=2, keepdims=True)  # [h, q, 1]
    seen = s > 0
    o = ops.einsum("hqk,khd->qhd", p / ops.where(seen, s, 1.0), v)
    lse = ops.where(seen, (ops.log2(ops.where(seen, s, 1.0)) + m_safe * LOG2E), -math.inf)[:, :, 0].T
    return o, lse


def _opts(kw):
    known = {"causal", "custom_mask", "window_left", "logits_soft_cap", "sm_scale", "pos_encoding", "rope_scale",
             "rope_theta"}
    bad = set(kw) - known
    if bad:
        raise TypeError("unknown option(s): %s" % ", ".join(sorted(bad)))
    return kw


def single_decode(q, k, v, *, layout="NHD", **opts):
    """q [H_qo, D]; k, v [kv_len, H_kv, D] (NHD) or [H_kv, kv_len, D] (HND). Returns (o [H_qo, D], lse [H_qo])."""
    ops = _ops(q)
    if layout == "HND":
        k, v = ops.swap(k, 0, 1), ops.swap(v, 0, 1)
    opts = _opts(opts)
    opts.pop("causal", None)
    o, lse = attention(q[None], k, v, **opts)
    return o[0], lse[0]


def single_prefill(q, k, v, *, layout="NHD", causal=False, custom_mask=None, packed_custom_mask=None, **opts):
    """q [qo_len, H_qo, D]; k, v as single_decode. custom_mask bool [qo_len, kv_len] or packed (little-endian)."""
    ops = _ops(q)
    if layout == "HND":
        k, v = ops.swap(k, 0, 1), ops.swap(v, 0, 1)
    if packed_custom_mask is not None:
        n = q.shape[0] * k.shape[0]
        custom_mask = np.unpackbits(np.asarray(packed_custom_mask, np.uint8).reshape(-1), bitorder="little")[:n]
    return attention(q, k, v, causal=causal, custom_mask=custom_mask, **_opts(opts))


def kv_lens_from_page_table(kv_indptr, kv_last_page_len, page_size):
    """kv_len[b] = P * (pages - 1) + last (0 for a request without pages)."""
    ip = [int(x) for x in np.asarray(_host(kv_indptr)).reshape(-1)]
    last = [int(x) for x in np.asarray(_host(kv_last_page_len)).reshape(-1)]
    out = []
    for b in range(len(last)):
        pages = ip[b + 1] - ip[b]
        out.append(0 if pages == 0 else page_size * (pages - 1) + last[b])
    return out


def _host(x):
    if _is_torch(x):
        return x.detach().cpu().numpy()
    return x


def gather_pages(cache, kv_indptr, kv_indices, kv_last_page_len, b, *, layout="NHD"):
    """The tokens of request b as [kv_len, H_kv, D]; cache NHD [pages, P, H_kv, D] or HND [pages, H_kv, P, D]."""
    ops = _ops(cache)
    ip = ops.ints(_host(kv_indptr))
    idx = ops.ints(_host(kv_indices))[ip[b]:ip[b + 1]]
    page_size = cache.shape[1] if layout == "NHD" else cache.shape[2]
    kv_len = kv_lens_from_page_table(kv_indptr, kv_last_page_len, page_size)[b]
    h, d = (cache.shape[2], cache.shape[3]) if layout == "NHD" else (cache.shape[1], cache.shape[3])
    if not idx:
        return ops.zeros((0, h, d))
    pages = ops.index(cache, idx)  # [n, P, H, D] or [n, H, P, D]
    if layout == "HND":
        pages = ops.swap(pages, 1, 2)
    elif layout != "NHD":
        raise ValueError("layout must be NHD or HND, got %r" % (layout,))
    return ops.f64(pages.reshape(len(idx) * page_size, h, d)[:kv_len])


def batch_decode_paged(q, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, *, layout="NHD", **opts):
    """q [B, H_qo, D]; paged caches. Returns (o [B, H_qo, D], lse [B, H_qo])."""
    ops = _ops(q)
    opts = _opts(opts)
    opts.pop("causal", None)
    outs, lses = [], []
    for b in range(q.shape[0]):
        k = gather_pages(k_cache, kv_indptr, kv_indices, kv_last_page_len, b, layout=layout)
        v = gather_pages(v_cache, kv_indptr, kv_indices, kv_last_page_len, b, layout=layout)
        o, lse = attention(q[b:b + 1], k, v, **opts)
        outs.append(o)
        lses.append(lse)
    if not outs:
        return ops.zeros((0,) + tuple(q.shape[1:])), ops.zeros((0, q.shape[1]))
    return ops.cat(outs, axis=0), ops.cat(lses, axis=0)


def _request_masks(custom_mask, packed_custom_mask, mask_byte_indptr, qo_lens, kv_lens):
    """Per-request bool masks (numpy) from an unpacked concatenated mask or its segment-packed form."""
    if custom_mask is None and packed_custom_mask is None:
        return [None] * len(qo_lens)
    lengths = [q * k for q, k in zip(qo_lens, kv_lens)]
    if packed_custom_mask is not None:
        if mask_byte_indptr is None:
            _, mask_byte_indptr = segment_pack_mask(np.zeros(sum(lengths), bool), mask_indptr(qo_lens, kv_lens))
        flat = unpack_segment_mask(_host(packed_custom_mask), mask_byte_indptr, lengths)
    else:
        flat = np.asarray(_host(custom_mask)).astype(bool).reshape(-1)
    ind = mask_indptr(qo_lens, kv_lens)
    if len(flat) != ind[-1]:
        raise ValueError("custom mask has %d elements, the batch needs %d" % (len(flat), ind[-1]))
    return [flat[ind[b]:ind[b + 1]].reshape(qo_lens[b], kv_lens[b]) for b in range(len(qo_lens))]


def batch_prefill_paged(q, qo_indptr, k_cache, v_cache, kv_indptr, kv_indices, kv_last_page_len, *, layout="NHD",
                        causal=False, custom_mask=None, packed_custom_mask=None, mask_byte_indptr=None, **opts):
    """q [qo_indptr[B], H_qo, D]; paged caches; custom_mask flat bool (requests concatenated) or its packed form.
    Returns (o [nnz_qo, H_qo, D], lse [nnz_qo, H_qo])."""
    ops = _ops(q)
    qi = ops.ints(_host(qo_indptr))
    page_size = k_cache.shape[1] if layout == "NHD" else k_cache.shape[2]
    kv_lens = kv_lens_from_page_table(kv_indptr, kv_last_page_len, page_size)
    qo_lens = [qi[b + 1] - qi[b] for b in range(len(qi) - 1)]
    masks = _request_masks(custom_mask, packed_custom_mask, mask_byte_indptr, qo_lens, kv_lens)
    outs, lses = [], []
    for b in range(len(qo_lens)):
        k = gather_pages(k_cache, kv_indptr, kv_indices, kv_last_page_len, b, layout=layout)
        v = gather_pages(v_cache, kv_indptr, kv_indices, kv_last_page_len, b, layout=layout)
        o, lse = attention(q[qi[b]:qi[b + 1]], k, v, causal=causal, custom_mask=masks[b], **_opts(opts))
        outs.append(o)
        lses.append(lse)
    return ops.cat(outs, axis=0), ops.cat(lses, axis=0)


def batch_prefill_ragged(q, qo_indptr, k, v, kv_indptr, *, causal=False, custom_mask=None, packed_custom_mask=None,
                         mask_byte_indptr=None, **opts):
    """q [qo_indptr[B], H_qo, D]; k, v [kv_indptr[B], H_kv, D]. Returns (o, lse) like batch_prefill_paged."""
    ops = _ops(q)
    qi = ops.ints(_host(qo_indptr))
    ki = ops.ints(_host(kv_indptr))
    qo_lens = [qi[b + 1] - qi[b] for b in range(len(qi) - 1)]
    kv_lens = [ki[b + 1] - ki[b] for b in range(len(ki) - 1)]
    masks = _request_masks(custom_mask, packed_custom_mask, mask_byte_indptr, qo_lens, kv_lens)
    outs, lses = [], []
    for b in range(len(qo_lens)):
        o, lse = attention(q[qi[b]:qi[b + 1]], k[ki[b]:ki[b + 1]], v[ki[b]:ki[b + 1]], causal=causal,
                           custom_mask=masks[b], **_opts(opts))
        outs.append(o)
        lses.append(lse)
    return ops.cat(outs, axis=0), ops.cat(lses, axis=0)


# ---------------------------------------------------------------------------------------------------------------
# Merging attention states (base-2 LSEs)


def merge_states(v, s):
    """v [n, S, H, D], s [n, S, H] -> (v [n, H, D], s [n, H]); rows whose states are all -inf give 0 / -inf."""
    ops = _ops(v)
    v, s = ops.f64(v), ops.f64(s)
    m = ops.amax(s, axis=1, keepdims=True)  # [n, 1, H]
    m_safe = ops.where(ops.isfinite(m), m, 0.0)
    w = ops.exp2(s - m_safe)  # -inf -> 0
    den = ops.sum(w, axis=1)  # [n, H]
    seen = den > 0
    num = ops.sum(w[..., None] * v, axis=1)  # [n, H, D]
    out_v = num / ops.where(seen, den, 1.0)[..., None]
    out_s = ops.where(seen, m_safe[:, 0, :] + ops.log2(ops.where(seen, den, 1.0)), -math.inf)
    return out_v, out_s


def merge_state(v_a, s_a, v_b, s_b):
    """Two states (v [n, H, D], s [n, H]) -> (v, s)."""
    ops = _ops(v_a)
    v = ops.cat([ops.f64(v_a)[:, None], ops.f64(v_b)[:, None]], axis=1)
    s = ops.cat([ops.f64(s_a)[:, None], ops.f64(s_b)[:, None]], axis=1)
    return merge_states(v, s)


# ---------------------------------------------------------------------------------------------------------------
# Self-test: closed-form checks, and torch == numpy when torch is importable


def selftest(verbose=True):
    rng = np.random.default_rng(0)
    # one key: out = v, lse = x * log2(e)
    q = rng.standard_normal((1, 2, 8))
    k = rng.standard_normal((1, 1, 8))
    v = rng.standard_normal((1, 1, 8))
    o, lse = attention(q, k, v)
    x = (q[0] @ k[0, 0]) / math.sqrt(8)
    assert np.allclose(o[0], np.repeat(v[0], 2, axis=0)) and np.allclose(lse[0], x * LOG2E)
    # empty and fully masked rows
    o, lse = attention(q, np.zeros((0, 1, 8)), np.zeros((0, 1, 8)))
    assert np.all(o == 0) and np.all(np.isneginf(lse))
    q3 = rng.standard_normal((3, 2, 8))
    o, lse = attention(q3, k, v, causal=True)  # qo_len 3 > kv_len 1: rows 0, 1 see nothing
    assert np.all(o[:2] == 0) and np.all(np.isneginf(lse[:2])) and np.all(np.isfinite(lse[2]))
    # masks: packing round trip, causal == explicit mask
    qo, kv = [3, 0, 5], [7, 4, 5]
    ind = mask_indptr(qo, kv)
    flat = rng.random(ind[-1]) < 0.5
    packed, byte_ind = segment_pack_mask(flat, ind)
    assert byte_ind == [0, 3, 3, 7] and np.array_equal(unpack_segment_mask(packed, byte_ind, np.diff(ind)), flat)
    assert pack_mask([1, 0, 0, 0, 0, 0, 0, 0, 1])[0] == 1 and pack_mask([1, 0, 0, 0, 0, 0, 0, 0, 1])[1] == 1
    qq = rng.standard_normal((4, 4, 16))
    kk = rng.standard_normal((6, 2, 16))
    vv = rng.standard_normal((6, 2, 16))
    a = attention(qq, kk, vv, causal=True, window_left=2, logits_soft_cap=5.0)
    b = attention(qq, kk, vv, custom_mask=causal_mask(4, 6), window_left=2, logits_soft_cap=5.0)
    assert np.allclose(a[0], b[0]) and np.allclose(a[1], b[1])
    # merging two halves of the keys gives attention over all of them
    full = attention(qq, kk, vv)
    h1 = attention(qq, kk[:2], vv[:2])
    h2 = attention(qq, kk[2:], vv[2:])
    mv, ms = merge_state(h1[0], h1[1], h2[0], h2[1])
    assert np.allclose(mv, full[0]) and np.allclose(ms, full[1])
    # RoPE: a rotation preserves norms; position 0 is the identity
    r = _rope(_NumpyOps(), qq, np.arange(4.0), 1.0, 1e4)
    assert np.allclose(np.linalg.norm(r, axis=-1), np.linalg.norm(qq, axis=-1)) and np.allclose(r[0], qq[0])
    # bf16 helpers
    xs = np.array([1.0, -2.5, 3.14159, 1e-3, np.inf], dtype=np.float32)
    assert np.allclose(bf16_bits_to_f32(f32_to_bf16_bits(xs)), xs, rtol=4e-3)
    checked = "numpy"
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        t = torch.from_numpy
        pk = rng.standard_normal((5, 4, 2, 16))  # 5 pages of 4, NHD
        pv = rng.standard_normal((5, 4, 2, 16))
        ip, ix, last = np.array([0, 2, 2, 5]), np.array([3, 0, 1, 4, 2]), np.array([3, 0, 1])
        qd = rng.standard_normal((3, 4, 16))
        for kw in ({}, {"logits_soft_cap": 3.0, "window_left": 2}, {"pos_encoding": "ROPE_LLAMA"}):
            on = batch_decode_paged(qd, pk, pv, ip, ix, last, **kw)
            ot = batch_decode_paged(t(qd), t(pk), t(pv), t(ip), t(ix), t(last), **kw)
            assert np.allclose(on[0], ot[0].numpy()) and np.allclose(on[1], ot[1].numpy(), equal_nan=True), kw
        hnd = (t(pk).transpose(1, 2).contiguous(), t(pv).transpose(1, 2).contiguous())
        oh = batch_decode_paged(t(qd), hnd[0], hnd[1], t(ip), t(ix), t(last), layout="HND")
        assert np.allclose(batch_decode_paged(qd, pk, pv, ip, ix, last)[0], oh[0].numpy())
        checked = "numpy and torch %s" % torch.__version__
    if verbose:
        print("reference.py selftest passed (%s)" % checked)
    return True


if __name__ == "__main__":
    selftest()

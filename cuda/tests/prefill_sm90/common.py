# Shared pieces of the Hopper prefill test and benchmark: loading the kernel library and calling it on torch
# tensors, and the float64 reference (SPEC.md: base-2 LSE of the scaled logits, bottom-right causal, GQA).
import ctypes, math, os
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
_lib = None


def lib():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(os.environ.get("FI4J_SM90_LIB", os.path.join(HERE, "libprefill_sm90.so")))
        f = _lib.fi4j_hopper_prefill
        LL, I, P = ctypes.c_longlong, ctypes.c_int, ctypes.c_void_p
        f.argtypes = [I, I, I, P, LL, LL, P, LL, LL, P, LL, LL, P, LL, LL, P, P, P, I, I, I, I, I,
                      ctypes.c_float, I, P]
        f.restype = I
        _lib.fi4j_hopper_error_string.restype = ctypes.c_char_p
    return _lib


def run(q, k, v, o, lse, qo_indptr, kv_indptr, hq, hkv, causal, sm_scale, variant=0):
    """q [nnz_qo, hq, D] (any strides with a contiguous last dim), k/v [nnz_kv, hkv, D], o like q, lse
    [nnz_qo, hq] float32 or None, indptrs int32 device tensors or None."""
    L = lib()
    D = q.shape[-1]
    dt = 1 if q.dtype == torch.bfloat16 else 0
    B = 1 if qo_indptr is None else qo_indptr.numel() - 1
    e = L.fi4j_hopper_prefill(dt, D, variant,
                              q.data_ptr(), q.stride(0), q.stride(1),
                              k.data_ptr(), k.stride(0), k.stride(1),
                              v.data_ptr(), v.stride(0), v.stride(1),
                              o.data_ptr(), o.stride(0), o.stride(1),
                              None if lse is None else lse.data_ptr(),
                              None if qo_indptr is None else qo_indptr.data_ptr(),
                              None if kv_indptr is None else kv_indptr.data_ptr(),
                              B, q.shape[0], k.shape[0], hq, hkv, float(sm_scale), int(causal),
                              torch.cuda.current_stream().cuda_stream)
    if e != 0:
        raise RuntimeError("fi4j_hopper_prefill: %s" % L.fi4j_hopper_error_string(e).decode())


def reference(q, k, v, qo_lens, kv_lens, hq, hkv, causal, sm_scale):
    """float64 reference over the ragged batch; returns o [nnz_qo, hq, D] float64, lse [nnz_qo, hq] float64."""
    D = q.shape[-1]
    g = hq // hkv
    o = torch.zeros(q.shape[0], hq, D, dtype=torch.float64, device=q.device)
    lse = torch.full((q.shape[0], hq), -math.inf, dtype=torch.float64, device=q.device)
    qs = ks = 0
    for ql, kl in zip(qo_lens, kv_lens):
        if ql > 0 and kl > 0:
            qq = q[qs:qs + ql].double().transpose(0, 1)                      # [hq, ql, D]
            kk = k[ks:ks + kl].double().transpose(0, 1).repeat_interleave(g, 0)  # [hq, kl, D]
            vv = v[ks:ks + kl].double().transpose(0, 1).repeat_interleave(g, 0)
            s = torch.matmul(qq, kk.transpose(1, 2)) * sm_scale               # [hq, ql, kl]
            if causal:
                i = torch.arange(ql, device=q.device)[:, None]
                j = torch.arange(kl, device=q.device)[None, :]
                s = s.masked_fill(j > i + (kl - ql), -math.inf)
            m = s.amax(-1, keepdim=True)
            seen = torch.isfinite(m)
            m = torch.where(seen, m, torch.zeros_like(m))
            p = torch.exp(s - m)
            l = p.sum(-1, keepdim=True)
            out = torch.matmul(p, vv) / torch.where(l > 0, l, torch.ones_like(l))
            ls = (m + torch.log(l)) / math.log(2.0)
            ls = torch.where(l > 0, ls, torch.full_like(ls, -math.inf))
            o[qs:qs + ql] = out.transpose(0, 1)
            lse[qs:qs + ql] = ls[..., 0].transpose(0, 1)
        qs += ql
        ks += kl
    return o, lse

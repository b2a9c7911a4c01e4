#!/usr/bin/env python3
"""Writes attention test cases in the golden layout, with expected outputs from FlashInfer (when importable and a
CUDA device is present) or from reference.py (PyTorch float64) otherwise.

    python3 python-compat/make_cases.py --op batch_decode_paged --batch 7 --kv-len 1,17,300 --heads 32/8 \\
        --head-dim 128 --page-size 16 --layout NHD --dtype bf16 --soft-cap 30 --window 100 --seed 1 -o cases.safetensors
    python3 python-compat/make_cases.py --preset sweep -o sweep.safetensors
    python3 python-compat/make_cases.py --preset ops -o ops.safetensors

Layout of the file (as golden/flashinfer-0.2.5): tensors <case>.<field>; metadata "cases" = JSON
{case: {op, parameters}} and "source". Fields per op:
  batch_decode_paged    q [B,Hq,D], k_cache, v_cache ([pages,P,Hkv,D] NHD / [pages,Hkv,P,D] HND), kv_indptr,
                        kv_indices, kv_last_page_len (int32) -> o [B,Hq,D], lse [B,Hq] (float32, base 2)
  batch_prefill_paged   + qo_indptr, q [nnz_qo,Hq,D], custom_mask (uint8 0/1, unpacked, requests concatenated)
  batch_prefill_ragged  q, k, v [nnz_kv,Hkv,D], qo_indptr, kv_indptr (+ custom_mask) -> o, lse
  single_decode         q [Hq,D], k, v ([kv_len,Hkv,D] NHD / [Hkv,kv_len,D] HND) -> o [Hq,D], lse [Hq]
  single_prefill        q [qo_len,Hq,D], k, v (+ custom_mask) -> o, lse
  merge_state           v_a, s_a, v_b, s_b -> v, s          merge_states  v_states [n,S,H,D], s_states -> v, s

Lists (--kv-len, --qo-len) are used cyclically over the batch; LO:HI draws each length uniformly (seeded).
Needs torch and safetensors (python3 -m pip install torch safetensors).
"""

import argparse
import json
import math
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

OPS = ("batch_decode_paged", "batch_prefill_paged", "batch_prefill_ragged", "single_decode", "single_prefill",
       "merge_state", "merge_states")
DTYPES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "f16": "float16", "float16": "float16"}
SPARE_PAGES = 3  # pages in the pool that no request uses, so page ids != request order


def need_torch():
    missing = []
    for mod in ("torch", "safetensors"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        sys.exit("make_cases.py needs %s; install with: python3 -m pip install torch safetensors\n"
                 "(compare.py needs numpy only)" % " and ".join(missing))


def try_flashinfer():
    try:
        import torch
        if not torch.cuda.is_available():
            return None, "no CUDA device"
        import flashinfer
        return flashinfer, None
    except Exception as e:  # ImportError, or a broken install
        return None, "%s: %s" % (type(e).__name__, e)


# ---------------------------------------------------------------------------------------------------------------
# Case specifications


def parse_lens(text, n, gen):
    """'1,17,300' (cyclic over n) or 'LO:HI' (uniform, inclusive) -> list of n ints."""
    import torch
    if text is None:
        return None
    if ":" in text:
        lo, hi = (int(x) for x in text.split(":"))
        if lo < 0 or hi < lo:
            raise SystemExit("bad length range %r" % text)
        return [int(x) for x in torch.randint(lo, hi + 1, (n,), generator=gen).tolist()]
    vals = [int(x) for x in text.split(",") if x.strip()]
    if not vals or min(vals) < 0:
        raise SystemExit("bad length list %r" % text)
    return [vals[i % len(vals)] for i in range(n)]


def spec_from_args(a, seed, name=None):
    hq, hkv = (int(x) for x in a.heads.split("/")) if "/" in a.heads else (int(a.heads), int(a.heads))
    s = dict(op=a.op, seed=seed, num_qo_heads=hq, num_kv_heads=hkv, head_dim=a.head_dim, page_size=a.page_size,
             layout=a.layout, dtype=DTYPES[a.dtype], logits_soft_cap=a.soft_cap, window_left=a.window,
             sm_scale=a.sm_scale, pos_encoding="ROPE_LLAMA" if a.rope else "NONE", rope_scale=a.rope_scale,
             rope_theta=a.rope_theta, mask=a.mask, batch=a.batch, kv_len=a.kv_len, qo_len=a.qo_len,
             states=a.states, rows=a.rows, neg_inf_rows=not a.no_neg_inf_rows, name=name)
    return s


def default_name(s):
    op = s["op"]
    short = {"batch_decode_paged": "decode", "batch_prefill_paged": "prefill_paged",
             "batch_prefill_ragged": "prefill_ragged", "single_decode": "single_decode",
             "single_prefill": "single_prefill", "merge_state": "merge_state", "merge_states": "merge_states"}[op]
    dt = "bf16" if s["dtype"] == "bfloat16" else "fp16"
    if op.startswith("merge"):
        return "%s_%s_h%d_d%d_s%d" % (short, dt, s["num_qo_heads"], s["head_dim"], s["seed"])
    parts = [short, dt, "h%d-%d" % (s["num_qo_heads"], s["num_kv_heads"]), "d%d" % s["head_dim"]]
    if "paged" in op:
        parts.append("p%d" % s["page_size"])
    if op != "batch_prefill_ragged":
        parts.append(s["layout"].lower())
    if "prefill" in op and s["mask"] != "none":
        parts.append(s["mask"])
    if s["logits_soft_cap"]:
        parts.append("cap%g" % s["logits_soft_cap"])
    if s["window_left"] >= 0:
        parts.append("win%d" % s["window_left"])
    if s["pos_encoding"] != "NONE":
        parts.append("rope")
    parts.append("s%d" % s["seed"])
    return "_".join(parts)


def sweep_specs(seed):
    """A varied decode set: GQA groups 1..16, page sizes 1/16, NHD/HND, fp16/bf16, empty requests, kv_len 1,
    windows, soft caps, RoPE, custom scales, head dims 64/128/256, a long request, and single decode."""
    base = dict(op="batch_decode_paged", head_dim=128, page_size=16, layout="NHD", dtype="bfloat16",
                logits_soft_cap=None, window_left=-1, sm_scale=None, pos_encoding="NONE", rope_scale=1.0,
                rope_theta=1e4, mask="none", qo_len=None, states=2, rows=9, neg_inf_rows=True, name=None)
    rows = [
        # (name, heads, kv lens, overrides)
        ("sweep_mha_bf16_p16_nhd", (8, 8), "1,17,300,0,64", {}),
        ("sweep_gqa2_fp16_d64_p1_hnd", (16, 8), "5,33,1,129", dict(dtype="float16", head_dim=64, page_size=1,
                                                                  layout="HND")),
        ("sweep_gqa3_bf16_p16_nhd", (12, 4), "100,7,16", {}),
        ("sweep_gqa4_bf16_p16_hnd_cap_win", (32, 8), "1,250,31,513", dict(layout="HND", logits_soft_cap=30.0,
                                                                         window_left=100)),
        ("sweep_gqa5_fp16_d64_p16_nhd", (5, 1), "40,1,77", dict(dtype="float16", head_dim=64)),
        ("sweep_gqa6_bf16_p1_nhd", (12, 2), "19,3", dict(page_size=1)),
        ("sweep_gqa7_fp16_d64_p1_hnd", (7, 1), "64,2", dict(dtype="float16", head_dim=64, page_size=1,
                                                           layout="HND")),
        ("sweep_gqa8_fp16_p1_nhd_rope", (32, 4), "1,90,257", dict(dtype="float16", page_size=1,
                                                                 pos_encoding="ROPE_LLAMA")),
        ("sweep_gqa16_bf16_p16_nhd", (16, 1), "2,700,45", {}),
        ("sweep_empty_requests_bf16_p16", (8, 2), "0,0,5,0,16,0", {}),
        ("sweep_kvlen1_bf16_p1_hnd", (8, 4), "1,1,1", dict(page_size=1, layout="HND")),
        ("sweep_window0_cap_fp16_p16", (8, 2), "1,20,200", dict(dtype="float16", window_left=0,
                                                               logits_soft_cap=10.0)),
        ("sweep_rope_win_cap_fp16_p16_hnd", (16, 4), "33,301,4", dict(dtype="float16", layout="HND",
                                                                     pos_encoding="ROPE_LLAMA", window_left=64,
                                                                     logits_soft_cap=50.0)),
        ("sweep_rope_theta_scale_bf16_p16", (8, 8), "600,9", dict(pos_encoding="ROPE_LLAMA", rope_theta=5e5,
                                                                 rope_scale=2.0)),
        ("sweep_smscale_bf16_d256_p16", (8, 2), "31,130", dict(head_dim=256, sm_scale=0.05)),
        ("sweep_long_bf16_p16_nhd", (32, 8), "2049,777,1500", {}),
        ("sweep_single_decode_bf16_nhd", (32, 8), "513", dict(op="single_decode")),
        ("sweep_single_decode_fp16_hnd_cap", (8, 2), "77", dict(op="single_decode", dtype="float16",
                                                               layout="HND", logits_soft_cap=20.0)),
    ]
    out = []
    for i, (name, (hq, hkv), kv, over) in enumerate(rows):
        s = dict(base, **over)
        s.update(name=name, num_qo_heads=hq, num_kv_heads=hkv, kv_len=kv, seed=seed + i,
                 batch=None if s["op"] == "batch_decode_paged" else 1)
        out.append(s)
    return out


def ops_specs(seed):
    """One small case of every op (prefill and merge included), plus two more prefill variants (a custom mask on
    single prefill; page size 1 with RoPE and a window), for the compat runner's coverage and as a reference
    self-check."""
    base = dict(head_dim=64, page_size=4, layout="NHD", dtype="bfloat16", logits_soft_cap=None, window_left=-1,
                sm_scale=None, pos_encoding="NONE", rope_scale=1.0, rope_theta=1e4, mask="none", qo_len=None,
                states=3, rows=7, neg_inf_rows=True, num_qo_heads=8, num_kv_heads=2, batch=None, name=None)
    rows = [
        ("ops_decode_paged", dict(op="batch_decode_paged", kv_len="1,9,0,20")),
        ("ops_single_decode", dict(op="single_decode", kv_len="13", batch=1)),
        ("ops_prefill_paged_causal", dict(op="batch_prefill_paged", kv_len="9,20,3", qo_len="9,4,5", mask="causal")),
        ("ops_prefill_paged_tree_hnd", dict(op="batch_prefill_paged", kv_len="12,7", qo_len="5,3", mask="tree",
                                            layout="HND")),
        ("ops_prefill_ragged_causal_win", dict(op="batch_prefill_ragged", kv_len="10,6", qo_len="10,2",
                                               mask="causal", window_left=3, logits_soft_cap=20.0)),
        ("ops_single_prefill_rope", dict(op="single_prefill", kv_len="11", qo_len="6", mask="causal", batch=1,
                                         pos_encoding="ROPE_LLAMA")),
        ("ops_merge_state", dict(op="merge_state", num_qo_heads=4)),
        ("ops_merge_states", dict(op="merge_states", num_qo_heads=4, dtype="float16")),
        # appended (earlier cases keep their seeds): a custom mask on single prefill, fp16, HND, soft cap; and a
        # non-causal paged prefill with page size 1, RoPE and a window
        ("ops_single_prefill_random_fp16_hnd", dict(op="single_prefill", kv_len="9", qo_len="5", mask="random",
                                                    batch=1, layout="HND", dtype="float16", logits_soft_cap=30.0)),
        ("ops_prefill_paged_none_p1_rope_win", dict(op="batch_prefill_paged", kv_len="8,5", qo_len="3,5", page_size=1,
                                                    pos_encoding="ROPE_LLAMA", window_left=4)),
    ]
    out = []
    for i, (name, over) in enumerate(rows):
        s = dict(base, **over)
        s.update(name=name, seed=seed + i)
        out.append(s)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Inputs


def page_table(kv_lens, page_size, gen):
    import torch
    pages = [(n + page_size - 1) // page_size for n in kv_lens]
    indptr = [0]
    for p in pages:
        indptr.append(indptr[-1] + p)
    pool = indptr[-1] + SPARE_PAGES
    perm = torch.randperm(pool, generator=gen)[: indptr[-1]]
    last = [0 if p == 0 else n - (p - 1) * page_size for n, p in zip(kv_lens, pages)]
    i32 = torch.int32
    return (torch.tensor(indptr, dtype=i32), perm.to(i32), torch.tensor(last, dtype=i32), pool)


def randn(shape, dtype, gen, scale=1.0):
    import torch
    return (torch.randn(shape, generator=gen, dtype=torch.float32) * scale).to(dtype)


def make_mask(kind, qo_lens, kv_lens, gen):
    """Unpacked concatenated custom mask (torch.bool) for kind 'tree' or 'random', else None."""
    import numpy as np
    import reference as ref
    import torch
    if kind not in ("tree", "random"):
        return None
    rng = np.random.default_rng(int(torch.randint(0, 2 ** 31, (1,), generator=gen)))
    parts = []
    for q, k in zip(qo_lens, kv_lens):
        if kind == "tree":
            if k < q:
                raise SystemExit("--mask tree needs kv_len >= qo_len for every request")
            parts.append(ref.tree_mask(q, k, rng).reshape(-1))
        else:
            parts.append((rng.random(q * k) < 0.6).reshape(-1))
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
    return torch.from_numpy(flat)


def build_inputs(s, gen):
    """Inputs (field -> CPU tensor) and the derived lengths of one spec."""
    import torch
    op = s["op"]
    dt = getattr(torch, s["dtype"])
    hq, hkv, d, P = s["num_qo_heads"], s["num_kv_heads"], s["head_dim"], s["page_size"]
    if hq % hkv:
        raise SystemExit("%s: num_qo_heads %d is not a multiple of num_kv_heads %d" % (s["name"], hq, hkv))
    if op.startswith("merge"):
        n = s["rows"]
        if op == "merge_state":
            t = {"v_a": randn((n, hq, d), dt, gen), "s_a": randn((n, hq), torch.float32, gen, 4.0),
                 "v_b": randn((n, hq, d), dt, gen), "s_b": randn((n, hq), torch.float32, gen, 4.0)}
            if s["neg_inf_rows"] and n >= 3:
                t["s_a"][0] = -math.inf  # a empty: the result is b
                t["s_b"][1] = -math.inf  # b empty: the result is a
                t["s_a"][2] = -math.inf  # both empty: 0 and -inf
                t["s_b"][2] = -math.inf
        else:
            S = s["states"]
            t = {"v_states": randn((n, S, hq, d), dt, gen), "s_states": randn((n, S, hq), torch.float32, gen, 4.0)}
            if s["neg_inf_rows"] and n >= 2:
                t["s_states"][0, 0] = -math.inf
                t["s_states"][1] = -math.inf
        return t, {}
    batch = s.get("batch")
    kv_spec = s["kv_len"] if s["kv_len"] is not None else "1:512"
    if batch is None:
        batch = len(kv_spec.split(",")) if ":" not in kv_spec else 4
    kv_lens = parse_lens(kv_spec, batch, gen)
    t = {}
    info = {"kv_lens": kv_lens}
    if op in ("batch_decode_paged", "batch_prefill_paged"):
        indptr, indices, last, pool = page_table(kv_lens, P, gen)
        shape = (pool, P, hkv, d) if s["layout"] == "NHD" else (pool, hkv, P, d)
        t.update(k_cache=randn(shape, dt, gen), v_cache=randn(shape, dt, gen), kv_indptr=indptr, kv_indices=indices,
                 kv_last_page_len=last)
    if op == "batch_decode_paged":
        t["q"] = randn((batch, hq, d), dt, gen)
        return t, info
    if op == "single_decode":
        n = kv_lens[0]
        shape = (n, hkv, d) if s["layout"] == "NHD" else (hkv, n, d)
        t.update(q=randn((hq, d), dt, gen), k=randn(shape, dt, gen), v=randn(shape, dt, gen))
        return t, info
    qo_lens = parse_lens(s["qo_len"], batch, gen) if s["qo_len"] is not None else list(kv_lens)
    info["qo_lens"] = qo_lens
    qo_indptr = [0]
    for n in qo_lens:
        qo_indptr.append(qo_indptr[-1] + n)
    mask = make_mask(s["mask"], qo_lens, kv_lens, gen)
    if mask is not None:
        t["custom_mask"] = mask.to(torch.uint8)
    if op == "single_prefill":
        n = kv_lens[0]
        shape = (n, hkv, d) if s["layout"] == "NHD" else (hkv, n, d)
        t.update(q=randn((qo_lens[0], hq, d), dt, gen), k=randn(shape, dt, gen), v=randn(shape, dt, gen))
        return t, info
    t["q"] = randn((qo_indptr[-1], hq, d), dt, gen)
    t["qo_indptr"] = torch.tensor(qo_indptr, dtype=torch.int32)
    if op == "batch_prefill_ragged":
        kv_indptr = [0]
        for n in kv_lens:
            kv_indptr.append(kv_indptr[-1] + n)
        t.update(k=randn((kv_indptr[-1], hkv, d), dt, gen), v=randn((kv_indptr[-1], hkv, d), dt, gen),
                 kv_indptr=torch.tensor(kv_indptr, dtype=torch.int32))
    return t, info


def case_params(s, flags):
    """The case's metadata entry (golden-file keys first)."""
    import torch
    op = s["op"]
    p = {"op": op}
    if op.startswith("merge"):
        p["dtype"] = str(getattr(torch, s["dtype"]))
        if op == "merge_states":
            p["num_states"] = s["states"]
    else:
        p.update(num_qo_heads=s["num_qo_heads"], num_kv_heads=s["num_kv_heads"], head_dim=s["head_dim"])
        if "paged" in op:
            p["page_size"] = s["page_size"]
        if op != "batch_prefill_ragged":
            p["layout"] = s["layout"]
        p["dtype"] = str(getattr(torch, s["dtype"]))
        if "prefill" in op:
            p["causal"] = s["mask"] == "causal"
            p["custom_mask"] = s["mask"] in ("tree", "random")
        p.update(logits_soft_cap=s["logits_soft_cap"], window_left=s["window_left"],
                 sm_scale=s["sm_scale"] if s["sm_scale"] is not None else 1.0 / math.sqrt(s["head_dim"]),
                 pos_encoding=s["pos_encoding"], rope_scale=s["rope_scale"], rope_theta=s["rope_theta"])
    p["seed"] = s["seed"]
    p.update(flags)
    return p


# ---------------------------------------------------------------------------------------------------------------
# Expected outputs


def ref_opts(p):
    return dict(window_left=p["window_left"], logits_soft_cap=p["logits_soft_cap"], sm_scale=p["sm_scale"],
                pos_encoding=p["pos_encoding"], rope_scale=p["rope_scale"], rope_theta=p["rope_theta"])


def run_reference(p, t, device):
    """reference.py in torch.float64 on `device`; returns (out, lse) or (v, s) as float64 tensors."""
    import reference as ref
    t = {k: v.to(device) for k, v in t.items()}
    op = p["op"]
    mask = t.get("custom_mask")
    if op == "batch_decode_paged":
        return ref.batch_decode_paged(t["q"], t["k_cache"], t["v_cache"], t["kv_indptr"], t["kv_indices"],
                                      t["kv_last_page_len"], layout=p["layout"], **ref_opts(p))
    if op == "batch_prefill_paged":
        return ref.batch_prefill_paged(t["q"], t["qo_indptr"], t["k_cache"], t["v_cache"], t["kv_indptr"],
                                       t["kv_indices"], t["kv_last_page_len"], layout=p["layout"],
                                       causal=p["causal"], custom_mask=mask, **ref_opts(p))
    if op == "batch_prefill_ragged":
        return ref.batch_prefill_ragged(t["q"], t["qo_indptr"], t["k"], t["v"], t["kv_indptr"], causal=p["causal"],
                                        custom_mask=mask, **ref_opts(p))
    if op == "single_decode":
        return ref.single_decode(t["q"], t["k"], t["v"], layout=p["layout"], **ref_opts(p))
    if op == "single_prefill":
        return ref.single_prefill(t["q"], t["k"], t["v"], layout=p["layout"], causal=p["causal"], custom_mask=mask,
                                  **ref_opts(p))
    if op == "merge_state":
        return ref.merge_state(t["v_a"], t["s_a"], t["v_b"], t["s_b"])
    return ref.merge_states(t["v_states"], t["s_states"])


def run_flashinfer(fi, p, t):
    """FlashInfer's own kernels on CUDA; returns (out, lse) or (v, s)."""
    import torch
    dev = torch.device("cuda")
    t = {k: v.to(dev) for k, v in t.items()}
    op = p["op"]
    dt = t["q"].dtype if "q" in t else None
    pe = p.get("pos_encoding", "NONE")
    kw = dict(window_left=p.get("window_left", -1), logits_soft_cap=p.get("logits_soft_cap"),
              sm_scale=p.get("sm_scale"), rope_scale=p.get("rope_scale"), rope_theta=p.get("rope_theta"))
    mask = t["custom_mask"].to(torch.bool) if "custom_mask" in t else None
    ws = torch.zeros(128 * 1024 * 1024, dtype=torch.uint8, device=dev)
    if op == "batch_decode_paged":
        w = fi.BatchDecodeWithPagedKVCacheWrapper(ws, kv_layout=p["layout"])
        w.plan(t["kv_indptr"], t["kv_indices"], t["kv_last_page_len"], p["num_qo_heads"], p["num_kv_heads"],
               p["head_dim"], p["page_size"], pos_encoding_mode=pe, q_data_type=dt, kv_data_type=dt, **kw)
        return w.run(t["q"], (t["k_cache"], t["v_cache"]), return_lse=True)
    if op == "batch_prefill_paged":
        w = fi.BatchPrefillWithPagedKVCacheWrapper(ws, kv_layout=p["layout"])
        w.plan(t["qo_indptr"], t["kv_indptr"], t["kv_indices"], t["kv_last_page_len"], p["num_qo_heads"],
               p["num_kv_heads"], p["head_dim"], p["page_size"], custom_mask=mask, causal=p["causal"],
               pos_encoding_mode=pe, q_data_type=dt, kv_data_type=dt, **kw)
        return w.run(t["q"], (t["k_cache"], t["v_cache"]), return_lse=True)
    if op == "batch_prefill_ragged":
        w = fi.BatchPrefillWithRaggedKVCacheWrapper(ws, kv_layout="NHD")
        w.plan(t["qo_indptr"], t["kv_indptr"], p["num_qo_heads"], p["num_kv_heads"], p["head_dim"],
               custom_mask=mask, causal=p["causal"], pos_encoding_mode=pe, q_data_type=dt, kv_data_type=dt, **kw)
        return w.run(t["q"], t["k"], t["v"], return_lse=True)
    if op == "single_decode":
        return fi.single_decode_with_kv_cache(t["q"], t["k"], t["v"], kv_layout=p["layout"], pos_encoding_mode=pe,
                                              return_lse=True, **kw)
    if op == "single_prefill":
        m = mask.reshape(t["q"].shape[0], -1) if mask is not None else None
        return fi.single_prefill_with_kv_cache(t["q"], t["k"], t["v"], custom_mask=m, causal=p["causal"],
                                               kv_layout=p["layout"], pos_encoding_mode=pe, return_lse=True, **kw)
    if op == "merge_state":
        return fi.merge_state(t["v_a"], t["s_a"], t["v_b"], t["s_b"])
    return fi.merge_states(t["v_states"], t["s_states"])


def max_diffs(a, b):
    """(max |a - b| over finite pairs, number of positions where exactly one is non-finite or they differ as inf)."""
    import torch
    a, b = a.double().cpu(), b.double().cpu()
    fin = torch.isfinite(a) & torch.isfinite(b)
    mism = int(((~torch.isfinite(a)) | (~torch.isfinite(b))).logical_and(a != b).sum())
    return (float((a[fin] - b[fin]).abs().max()) if fin.any() else 0.0), mism


# ---------------------------------------------------------------------------------------------------------------


def generate(specs, source, device, fi, why_no_fi):
    import torch
    tensors, cases, notes = {}, {}, []
    for s in specs:
        gen = torch.Generator().manual_seed(int(s["seed"]))
        name = s["name"] or default_name(s)
        if name in cases:
            raise SystemExit("duplicate case name %s (use --name or another --seed)" % name)
        t, info = build_inputs(dict(s, name=name), gen)
        p = case_params(s, {})
        out_fields = ("v", "s") if p["op"].startswith("merge") else ("o", "lse")
        ref_o, ref_l = run_reference(p, t, device)
        exp_from = "reference.py float64 (torch %s, %s)" % (torch.__version__, device)
        o, lse = ref_o, ref_l
        if source in ("auto", "flashinfer") and fi is not None:
            try:
                o, lse = run_flashinfer(fi, p, t)
                exp_from = "flashinfer %s" % getattr(fi, "__version__", "?")
                da, ma = max_diffs(o, ref_o)
                dl, ml = max_diffs(lse, ref_l)
                notes.append("%s: flashinfer vs float64 reference: %s max abs %.2e, %s max abs %.2e%s" % (
                    name, out_fields[0], da, out_fields[1], dl,
                    "" if ma + ml == 0 else ", %d inf/nan mismatches" % (ma + ml)))
            except Exception as e:  # an unsupported configuration in FlashInfer: keep the reference
                if source == "flashinfer":
                    raise SystemExit("%s: FlashInfer failed: %s: %s" % (name, type(e).__name__, e))
                notes.append("%s: FlashInfer failed (%s: %s); expected outputs from the reference" % (
                    name, type(e).__name__, str(e).splitlines()[0] if str(e) else ""))
        elif source == "flashinfer":
            raise SystemExit("--source flashinfer: FlashInfer is not usable (%s)" % why_no_fi)
        dt = t["q"].dtype if "q" in t else (t["v_a"].dtype if "v_a" in t else t["v_states"].dtype)
        p["expected_from"] = exp_from
        for k, v in t.items():
            tensors[name + "." + k] = v.contiguous().cpu()
        tensors[name + "." + out_fields[0]] = o.to(dt).contiguous().cpu()
        tensors[name + "." + out_fields[1]] = lse.to(torch.float32).contiguous().cpu()
        cases[name] = p
        if "q" in t:
            what = "q %s  kv_len %s" % ("x".join(str(x) for x in t["q"].shape), ",".join(map(str, info["kv_lens"])))
        else:
            v = t.get("v_a", t.get("v_states"))
            what = "v %s" % "x".join(str(x) for x in v.shape)
        print("  %-44s %-20s %s" % (name, p["op"], what if len(what) <= 70 else what[:67] + "..."))
    return tensors, cases, notes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("-o", "--output", required=True, help="safetensors file to write")
    ap.add_argument("--preset", choices=("sweep", "ops"), help="a predefined set of cases instead of --op")
    ap.add_argument("--op", choices=OPS, default="batch_decode_paged")
    ap.add_argument("--batch", type=int, help="requests (default: the length of the --kv-len list, 4 for a range)")
    ap.add_argument("--kv-len", help="kv lengths: a list 1,17,300 (cyclic) or a range LO:HI (default 1:512)")
    ap.add_argument("--qo-len", help="prefill query lengths, same syntax (default: equal to kv_len)")
    ap.add_argument("--heads", default="32/8", help="num_qo_heads/num_kv_heads (default 32/8)")
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--page-size", type=int, default=16)
    ap.add_argument("--layout", choices=("NHD", "HND"), default="NHD")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    ap.add_argument("--soft-cap", type=float, default=None, help="logits soft cap (default off)")
    ap.add_argument("--window", type=int, default=-1, help="window_left (default -1 = off)")
    ap.add_argument("--sm-scale", type=float, default=None, help="default 1/sqrt(head_dim)")
    ap.add_argument("--rope", action="store_true", help="pos_encoding ROPE_LLAMA (RoPE inside attention)")
    ap.add_argument("--rope-scale", type=float, default=1.0)
    ap.add_argument("--rope-theta", type=float, default=1e4)
    ap.add_argument("--mask", choices=("none", "causal", "tree", "random"), default=None,
                    help="prefill mask (default causal); tree/random are custom masks")
    ap.add_argument("--states", type=int, default=3, help="merge_states: states per row")
    ap.add_argument("--rows", type=int, default=9, help="merge: rows")
    ap.add_argument("--no-neg-inf-rows", action="store_true", help="merge: no -inf LSE rows")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=1, help="cases to write (seeds seed, seed+1, ...)")
    ap.add_argument("--name", help="case name (default derived from the parameters; _i appended with --count)")
    ap.add_argument("--append", action="store_true", help="add to the cases already in --output")
    ap.add_argument("--source", choices=("auto", "flashinfer", "reference"), default="auto",
                    help="expected outputs: FlashInfer when usable (auto), or always the float64 reference")
    ap.add_argument("--device", default=None, help="torch device of the reference (default cuda if present, else cpu)")
    a = ap.parse_args(argv)
    need_torch()
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    if a.mask is None:
        a.mask = "causal" if "prefill" in a.op else "none"
    if a.preset == "sweep":
        specs = sweep_specs(a.seed)
    elif a.preset == "ops":
        specs = ops_specs(a.seed)
    else:
        specs = []
        for i in range(a.count):
            name = a.name if a.count == 1 else (a.name + "_%d" % i if a.name else None)
            specs.append(spec_from_args(a, a.seed + i, name))
    fi, why = (None, "--source reference") if a.source == "reference" else try_flashinfer()
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print("make_cases.py: %d case(s), expected outputs from %s" % (
        len(specs), "FlashInfer %s" % getattr(fi, "__version__", "?") if fi else "reference.py float64 (%s)" % why))
    tensors, cases, notes = generate(specs, a.source, device, fi, why)
    source = "flashinfer4j python-compat/make_cases.py (torch %s): expected outputs from %s" % (
        torch.__version__, "FlashInfer %s kernels on %s" % (getattr(fi, "__version__", "?"),
                                                          torch.cuda.get_device_name()) if fi
        else "reference.py float64")
    if a.append and os.path.exists(a.output):
        old = load_file(a.output)
        with safe_open(a.output, "pt") as f:
            meta = f.metadata() or {}
        old_cases = json.loads(meta.get("cases", "{}"))
        dup = sorted(set(old_cases) & set(cases))
        if dup:
            raise SystemExit("cases already in %s: %s" % (a.output, ", ".join(dup)))
        old_cases.update(cases)
        old.update(tensors)
        tensors, cases = old, old_cases
        if meta.get("source") and meta["source"] != source:
            source = meta["source"] + " | " + source
    save_file(tensors, a.output, metadata={"cases": json.dumps(cases), "source": source})
    for n in notes:
        print("  note: " + n)
    print("wrote %s: %d case(s), %d tensors" % (a.output, len(cases), len(tensors)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

# Correctness sweep of the Hopper prefill kernel against a float64 reference (SPEC.md tolerances: bf16 outputs
# within 1e-2 absolute + 1e-2 relative, fp16 2e-3; LSE within 1e-3). Outputs are poisoned with NaN first, so
# unwritten elements fail. Usage: python3 test_prefill_sm90.py [smoke|sweep] [variant ...]
import math, random, sys, time
import torch
from common import run, reference

torch.manual_seed(0)
random.seed(0)
dev = "cuda"


def make_case(qo_lens, kv_lens, hq, hkv, D, dtype, layout):
    nq, nk = sum(qo_lens), sum(kv_lens)
    if layout == "packed":  # q, k, v as views of one [n, hq + 2 hkv, D] buffer (strided rows), needs nq == nk
        buf = torch.randn(max(nq, nk), hq + 2 * hkv, D, dtype=dtype, device=dev)
        q, k, v = buf[:nq, :hq], buf[:nk, hq:hq + hkv], buf[:nk, hq + hkv:]
    elif layout == "hnd":  # head-major storage: row stride D, head stride n*D
        q = torch.randn(hq, nq, D, dtype=dtype, device=dev).transpose(0, 1)
        k = torch.randn(hkv, nk, D, dtype=dtype, device=dev).transpose(0, 1)
        v = torch.randn(hkv, nk, D, dtype=dtype, device=dev).transpose(0, 1)
    else:
        q = torch.randn(nq, hq, D, dtype=dtype, device=dev)
        k = torch.randn(nk, hkv, D, dtype=dtype, device=dev)
        v = torch.randn(nk, hkv, D, dtype=dtype, device=dev)
    return q, k, v


def check(qo_lens, kv_lens, hq, hkv, D, dtype, causal, variant, batched=True, layout="nhd", with_lse=True):
    q, k, v = make_case(qo_lens, kv_lens, hq, hkv, D, dtype, layout)
    nq = q.shape[0]
    o = torch.full((nq, hq, D), float("nan"), dtype=dtype, device=dev)
    lse = torch.full((nq, hq), float("nan"), dtype=torch.float32, device=dev) if with_lse else None
    if batched:
        qi = torch.tensor([0] + list(torch.tensor(qo_lens).cumsum(0).tolist()), dtype=torch.int32, device=dev)
        ki = torch.tensor([0] + list(torch.tensor(kv_lens).cumsum(0).tolist()), dtype=torch.int32, device=dev)
    else:
        qi = ki = None
    scale = 1.0 / math.sqrt(D)
    run(q, k, v, o, lse, qi, ki, hq, hkv, causal, scale, variant)
    torch.cuda.synchronize()
    ro, rl = reference(q, k, v, qo_lens, kv_lens, hq, hkv, causal, scale)
    tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
    od = o.double()
    err = (od - ro).abs()
    bad_o = (~torch.isfinite(od)) | (err > tol + tol * ro.abs())
    fin_o = err[torch.isfinite(err)]
    max_err = fin_o.max().item() if fin_o.numel() else float("nan")
    rel = ((od - ro).norm() / ro.norm().clamp_min(1e-30)).item() if ro.numel() else 0.0
    lse_err = 0.0
    bad_l = torch.zeros(1, dtype=torch.bool, device=dev)
    if with_lse:
        ld = lse.double()
        both_inf = torch.isinf(ld) & torch.isinf(rl) & (ld < 0) & (rl < 0)
        le = torch.where(both_inf, torch.zeros_like(ld), (ld - rl).abs())
        bad_l = torch.isnan(le) | (le > 1e-3)
        fin = le[torch.isfinite(le)]
        lse_err = fin.max().item() if fin.numel() else 0.0
    ok = (not bad_o.any().item()) and (not bad_l.any().item())
    return ok, max_err, rel, lse_err, int(bad_o.sum().item()), int(bad_l.sum().item())


def cases():
    lens = [1, 7, 63, 64, 65, 127, 128, 129, 1000]
    out = []
    # single requests, square and not
    for D in (64, 128, 256):
        for L in lens + [4096]:
            out.append(dict(qo=[L], kv=[L], hq=8, hkv=2, D=D, causal=True, batched=False))
            out.append(dict(qo=[L], kv=[L], hq=4, hkv=4, D=D, causal=False, batched=False))
        for (a, b) in [(7, 1000), (129, 4096), (1000, 63), (65, 7), (1, 4096), (200, 1), (63, 129)]:
            for c in (True, False):
                out.append(dict(qo=[a], kv=[b], hq=4, hkv=1, D=D, causal=c, batched=False))
    # GQA groups
    for D in (64, 128, 256):
        for (hq, hkv) in [(2, 2), (4, 2), (8, 2), (16, 2), (32, 2), (32, 32)]:
            out.append(dict(qo=[257], kv=[300], hq=hq, hkv=hkv, D=D, causal=True, batched=True))
    # batches with empty requests, qo < kv and qo > kv
    for D in (64, 128, 256):
        for c in (True, False):
            out.append(dict(qo=[0, 7, 129, 0, 1000, 64, 3], kv=[5, 0, 300, 0, 1000, 2000, 3], hq=8, hkv=2, D=D,
                            causal=c, batched=True))
            out.append(dict(qo=[128] * 5, kv=[127, 128, 129, 1, 500], hq=4, hkv=4, D=D, causal=c, batched=True))
            out.append(dict(qo=[65, 300], kv=[10, 70], hq=4, hkv=2, D=D, causal=c, batched=True))
    # many work items per persistent block (nt = 0 items interleaved), and long requests with many row tiles
    rng = random.Random(7)
    for D in (64, 128, 256):
        for c in (True, False):
            ql = [rng.choice([0, 1, 5, 64, 130, 300]) for _ in range(50)]
            kl = [rng.choice([0, 3, 64, 129, 400]) for _ in range(50)]
            out.append(dict(qo=ql, kv=kl, hq=16, hkv=4, D=D, causal=c, batched=True))
        out.append(dict(qo=[2000], kv=[2000], hq=32, hkv=8, D=D, causal=True, batched=False))
        out.append(dict(qo=[1500, 700], kv=[1600, 700], hq=32, hkv=8, D=D, causal=False, batched=True))
    # strided layouts
    for D in (64, 128, 256):
        out.append(dict(qo=[500], kv=[500], hq=8, hkv=2, D=D, causal=True, batched=False, layout="packed"))
        out.append(dict(qo=[33, 300], kv=[33, 300], hq=4, hkv=2, D=D, causal=False, batched=True, layout="packed"))
        out.append(dict(qo=[300], kv=[700], hq=4, hkv=2, D=D, causal=True, batched=False, layout="hnd"))
    return out


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "sweep"
    variants = [int(x) for x in sys.argv[2:]] or [0]
    if mode == "smoke":
        todo = [dict(qo=[200], kv=[200], hq=2, hkv=1, D=128, causal=True, batched=False),
                dict(qo=[200], kv=[300], hq=2, hkv=1, D=64, causal=False, batched=True),
                dict(qo=[130], kv=[200], hq=2, hkv=1, D=256, causal=True, batched=True)]
    else:
        todo = cases()
    summary = {}
    t0 = time.time()
    for variant in variants:
        for dtype in (torch.bfloat16, torch.float16):
            for cs in todo:
                if dtype == torch.float16 and mode != "smoke" and (max(cs["qo"]) >= 4096 or max(cs["kv"]) >= 4096):
                    continue  # fp16 sweep skips the largest shapes to save device time
                ok, me, rel, le, nbo, nbl = check(cs["qo"], cs["kv"], cs["hq"], cs["hkv"], cs["D"], dtype,
                                                  cs["causal"], variant, cs.get("batched", True),
                                                  cs.get("layout", "nhd"))
                key = (variant, str(dtype).split(".")[-1], cs["D"], "causal" if cs["causal"] else "full")
                s = summary.setdefault(key, [0, 0, 0.0, 0.0, 0.0])
                s[0 if ok else 1] += 1
                s[2] = max(s[2], me)
                s[3] = max(s[3], rel)
                s[4] = max(s[4], le)
                if not ok:
                    print("FAIL v%d %s D=%d qo=%s kv=%s hq=%d hkv=%d causal=%s layout=%s: max_abs=%.3g rel=%.3g "
                          "lse=%.3g bad_o=%d bad_lse=%d" % (variant, key[1], cs["D"], cs["qo"][:8], cs["kv"][:8],
                                                           cs["hq"], cs["hkv"], cs["causal"],
                                                           cs.get("layout", "nhd"), me, rel, le, nbo, nbl),
                          flush=True)
    total_pass = sum(v[0] for v in summary.values())
    total_fail = sum(v[1] for v in summary.values())
    print("variant dtype D mask: pass fail max_abs_err max_rel_norm_err max_lse_err")
    for key in sorted(summary):
        v = summary[key]
        print("v%d %s D=%d %s: %d %d %.3g %.3g %.3g" % (key[0], key[1], key[2], key[3], v[0], v[1], v[2], v[3], v[4]))
    print("%s: %d passed, %d failed (%.0f s)" % (mode, total_pass, total_fail, time.time() - t0), flush=True)
    sys.exit(1 if total_fail else 0)


if __name__ == "__main__":
    main()

# Timing of the Hopper prefill kernel beside PyTorch SDPA (cuDNN and FlashAttention-2 backends) in the same
# process, on issue 14's shapes (bf16, 32 query heads / 8 KV heads), plus the bf16 GEMM ceiling. CUDA events,
# warm-up, median of REP runs. TFLOP/s = 4 * qo * kv * Hq * D / t (halved for causal). Writes $OUT/bench.json.
# Usage: python3 bench_prefill_sm90.py [variant ...]
import json, math, os, sys
import torch
import torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend
from common import run

dev = "cuda"
REP = int(os.environ.get("REP", "20"))


def bench(fn, warm=3, rep=REP):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(rep):
        s = torch.cuda.Event(enable_timing=True)
        e = torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        ts.append(s.elapsed_time(e))
    ts.sort()
    return ts[len(ts) // 2]


def main():
    variants = [int(x) for x in sys.argv[1:]] or [0]
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": []}
    x = torch.randn(8192, 8192, dtype=torch.bfloat16, device=dev)
    y = torch.randn_like(x)
    res["gemm_bf16_TFLOPs"] = round(2 * 8192 ** 3 / bench(lambda: x @ y) / 1e9, 1)
    del x, y
    print("device", res["device"], "gemm bf16", res["gemm_bf16_TFLOPs"], "TFLOP/s", flush=True)
    shapes = [(1, 8192, 128, True), (1, 8192, 128, False), (1, 16384, 128, True), (4, 2048, 128, True),
              (1, 8192, 64, True), (1, 8192, 256, True)]
    H, HKV = 32, 8
    for (B, L, D, causal) in shapes:
        flops = 4.0 * B * L * L * H * D * (0.5 if causal else 1.0)
        row = {"B": B, "L": L, "D": D, "causal": causal}
        q = torch.randn(B * L, H, D, dtype=torch.bfloat16, device=dev)
        k = torch.randn(B * L, HKV, D, dtype=torch.bfloat16, device=dev)
        v = torch.randn(B * L, HKV, D, dtype=torch.bfloat16, device=dev)
        o = torch.empty_like(q)
        lse = torch.empty(B * L, H, dtype=torch.float32, device=dev)
        ind = torch.arange(0, B + 1, dtype=torch.int32, device=dev) * L if B > 1 else None
        scale = 1.0 / math.sqrt(D)
        for var in variants:
            try:
                ms = bench(lambda: run(q, k, v, o, lse, ind, ind, H, HKV, causal, scale, var))
                row["ours_v%d_TFLOPs" % var] = round(flops / ms / 1e9, 1)
            except Exception as ex:
                row["ours_v%d_TFLOPs" % var] = "err:" + str(ex)[:60]
        qs = q.view(B, L, H, D).transpose(1, 2)
        ks = k.view(B, L, HKV, D).transpose(1, 2)
        vs = v.view(B, L, HKV, D).transpose(1, 2)
        for name, be in [("cudnn", SDPBackend.CUDNN_ATTENTION), ("fa2", SDPBackend.FLASH_ATTENTION)]:
            try:
                with sdpa_kernel([be]):
                    ms = bench(lambda: F.scaled_dot_product_attention(qs, ks, vs, is_causal=causal, enable_gqa=True))
                row[name + "_TFLOPs"] = round(flops / ms / 1e9, 1)
            except Exception as ex:
                row[name + "_TFLOPs"] = "err:" + str(ex)[:60]
        ours = row.get("ours_v0_TFLOPs")
        for name in ("cudnn", "fa2"):
            if isinstance(ours, float) and isinstance(row.get(name + "_TFLOPs"), float):
                row["v0/" + name] = round(ours / row[name + "_TFLOPs"], 3)
        res["rows"].append(row)
        print(row, flush=True)
        del q, k, v, o, lse
        torch.cuda.empty_cache()
    json.dump(res, open(os.path.join(os.environ.get("OUT", "."), "bench.json"), "w"), indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Builds the prefill table of BENCHMARKS.md from one GPU-machine run: flashinfer4j's prefill.json (written by
`java -jar benchmarks.jar bench prefill`) and peers.json (python-compat/torch_peers.py, run in the same call).

usage: prefill_report.py prefill.json [peers.json] > prefill_table.md
FlashInfer's own figures cannot be re-measured on the GPU machine; they are the recorded ones of
../shared/PEERS.md (same card), marked as such. Issue 4's targets apply to the bf16, D=128, 32/8-head rows; the
D=64 and D=256 rows are reported without targets. Needs the standard library only.
"""
import json
import sys

# (B, L, H, Hkv, D, causal) -> FlashInfer 0.2.5 FA2 template, ragged KV, TFLOP/s (PEERS.md, H100 SXM, bf16)
FLASHINFER = {
    (1, 4096, 32, 8, 128, True): 296, (1, 8192, 32, 8, 128, True): 359, (1, 8192, 32, 8, 128, False): 393,
    (1, 16384, 32, 8, 128, True): 375, (4, 2048, 32, 8, 128, True): 312,
}
# issue 4's targets, TFLOP/s
TARGET = {
    (1, 8192, 32, 8, 128, True): 380, (1, 8192, 32, 8, 128, False): 410, (1, 16384, 32, 8, 128, True): 395,
    (4, 2048, 32, 8, 128, True): 330,
}
# issue 4: the paged variant within 10% of the ragged one at page size 16
PAGED_MIN_RATIO = 0.90


def num(x):
    """A figure, or None for a missing value or a peer's "err:..." string."""
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def fmt(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def shape_label(k):
    B, L, H, Hkv, D, causal = k
    return f"{B} x {L} {'causal' if causal else 'non-causal'}, {H}/{Hkv}, D={D}"


def peer_cell(row, backend):
    """TFLOP/s of one SDPA backend, marked when it ran on K/V expanded to H_qo heads; 'err' when it failed."""
    if row is None:
        return "-", None
    v = row.get(backend + "_TFLOPs")
    x = num(v)
    if x is None:
        return ("err" if isinstance(v, str) else "-"), None
    return fmt(x) + (" (exp.)" if row.get(backend + "_gqa") == "expanded" else ""), x


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    ours = json.load(open(argv[1]))
    peers = json.load(open(argv[2])) if len(argv) > 2 else {}
    by_shape = {}
    for r in ours["prefill"]:
        if r["qo_len"] != r["kv_len"]:
            continue
        key = (r["B"], r["qo_len"], r["H"], r["Hkv"], r["D"], bool(r["causal"]))
        by_shape.setdefault(key, {})[r["variant"]] = r
    # D=128 (the rows with targets) first, then the other head dims in the order they ran
    dims = []
    for k in by_shape:
        if k[4] not in dims:
            dims.append(k[4])
    seen = list(dims)
    dims.sort(key=lambda d: (d != 128, seen.index(d)))
    keys = sorted(by_shape, key=lambda k: dims.index(k[4]))
    peer = {(r["B"], r["L"], r["H"], r["Hkv"], r["D"], bool(r["causal"])): r for r in peers.get("prefill", [])}
    dtypes = sorted({r["dtype"] for r in ours["prefill"]})
    pages = sorted({r["page"] for r in ours["prefill"] if r.get("variant") == "paged" and "page" in r})

    print(f"### Prefill, {ours['device']}, {ours['date']}: {'/'.join(dtypes)}, NHD, qo_len = kv_len per request; "
          f"TFLOP/s (4 * qo_len * kv_len * H_qo * D per request, halved when causal)")
    print()
    print(f"Timing: {ours.get('timing', 'CUDA events')}, median of {ours.get('reps', '?')} after "
          f"{ours.get('warmup', '?')} warm-up runs. Ragged: `BatchPrefillWithRaggedKvCache`; paged: "
          f"`BatchPrefillWithPagedKvCache`, page size {'/'.join(map(str, pages)) or '-'}, pages shuffled over the "
          "pool. PyTorch SDPA (FlashAttention-2 and cuDNN backends) over contiguous [B, H, L, D] tensors, one call "
          "per event pair, measured in the same run.")
    print()
    if peers:
        gqa = sorted({r.get(b + "_gqa", "enable_gqa") for r in peers.get("prefill", []) for b in ("flash", "cudnn")
                      if r["H"] != r["Hkv"] and num(r.get(b + "_TFLOPs")) is not None})
        note = ("GQA in PyTorch: `enable_gqa=True`" if gqa in ([], ["enable_gqa"]) else
                "GQA in PyTorch: `enable_gqa=True`, or K/V expanded to H_qo heads before the timed call where the "
                "backend refused it, marked (exp.)")
        ceiling = num(peers.get("gemm_bf16_TFLOPs"))
        print(f"Peers: {peers.get('device', '?')}"
              + (f"; bf16 GEMM 8192^3 in this run: {ceiling:.0f} TFLOP/s (the ceiling of '% of GEMM')" if ceiling else "")
              + f". {note}. FlashInfer FA2 (ragged) as recorded in ../shared/PEERS.md (same card, not re-measured).")
        if peers.get("device") and peers["device"] != ours["device"]:
            print()
            print(f"**Warning: the peers ran on {peers['device']}, flashinfer4j on {ours['device']}.**")
    else:
        print("Peers: not measured in this run (no peers.json). FlashInfer FA2 (ragged) as recorded in "
              "../shared/PEERS.md.")
    print()
    gemm = num(peers.get("gemm_bf16_TFLOPs")) if peers else None
    print("| shape | flashinfer4j ragged | % of GEMM | paged | paged/ragged | FlashInfer FA2 (recorded) | PyTorch FA2 "
          "| cuDNN | ours/FlashInfer | target | met |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    slow_paged = []
    errors = []
    for key in keys:
        v = by_shape[key]
        for name, r in v.items():
            if "error" in r:
                errors.append(f"{shape_label(key)} {name}: {r['error']}")
            elif not r.get("finite", True):
                errors.append(f"{shape_label(key)} {name}: non-finite outputs")
        rag = num(v.get("ragged", {}).get("TFLOPs"))
        pag = num(v.get("paged", {}).get("TFLOPs"))
        ratio = pag / rag if pag and rag else None
        if ratio is not None and ratio < PAGED_MIN_RATIO:
            slow_paged.append(f"{shape_label(key)}: {ratio:.2f}")
        fa2_cell, _ = peer_cell(peer.get(key), "flash")
        cudnn_cell, _ = peer_cell(peer.get(key), "cudnn")
        bf16 = all(r.get("dtype") == "BF16" for r in v.values())  # the recorded figures and targets are bf16
        fi = FLASHINFER.get(key) if bf16 else None
        tgt = TARGET.get(key) if bf16 else None
        met = "-" if tgt is None else ("yes" if rag is not None and rag >= tgt else "no")
        pct = f"{100 * rag / gemm:.0f}%" if rag and gemm else "-"
        print(f"| {shape_label(key)} | {fmt(rag)} | {pct} | {fmt(pag)} | {fmt(ratio, 2)} | {fmt(fi, 0)} | {fa2_cell} "
              f"| {cudnn_cell} | {fmt(rag / fi, 2) if rag and fi else '-'} | {fmt(tgt, 0)} | {met} |")
    print()
    with_ratio = [k for k in keys if num(by_shape[k].get("paged", {}).get("TFLOPs"))
                  and num(by_shape[k].get("ragged", {}).get("TFLOPs"))]
    if with_ratio:
        if slow_paged:
            print(f"Paged within {100 - PAGED_MIN_RATIO * 100:.0f}% of ragged (issue 4): no for "
                  + "; ".join(slow_paged) + ".")
        else:
            print(f"Paged within {100 - PAGED_MIN_RATIO * 100:.0f}% of ragged (issue 4): yes, all "
                  f"{len(with_ratio)} rows.")
        print()
    single = [(k, num(v["single"].get("TFLOPs"))) for k, v in by_shape.items() if "single" in v]
    single = [(k, x) for k, x in single if x is not None]
    if single:
        print("(`SinglePrefill`, batch 1, same data: " + ", ".join(f"{shape_label(k)}: {x:.1f}" for k, x in single)
              + ")")
        print()
    if errors:
        print("Not measured / failed: " + "; ".join(errors))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

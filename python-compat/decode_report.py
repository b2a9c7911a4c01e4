#!/usr/bin/env python3
"""Builds the decode table of BENCHMARKS.md from one GPU-machine run: flashinfer4j's decode.json (written by
`java -jar benchmarks.jar bench decode`) and peers.json (python-compat/torch_peers.py, run in the same call).

usage: decode_report.py decode.json peers.json > decode_table.md
FlashInfer's own figures cannot be re-measured on the GPU machine; they are the recorded ones of
../shared/PEERS.md (same card, same shapes), marked as such.
"""
import json
import sys

# (B, KV, H, Hkv) -> FlashInfer 0.2.5 best of its CUDA-core and tensor-core decode, TB/s (PEERS.md, H100 SXM)
FLASHINFER = {
    (1, 32768, 32, 8): 1.79, (16, 4096, 32, 8): 2.27, (64, 4096, 32, 8): 2.80, (128, 2048, 32, 8): 2.81,
    (256, 1024, 32, 8): 2.78, (64, 8192, 32, 8): 2.90, (64, 4096, 32, 32): 2.99, (64, 4096, 64, 8): 2.78,
    (64, 512, 32, 8): 1.85, (256, 256, 32, 8): 2.23,
}
# H100 SXM HBM3 bandwidth on the datasheet (PEERS.md), TB/s
DATASHEET_TBPS = 3.35
# issue 3's targets, TB/s
TARGET = {
    (64, 4096, 32, 8): 2.95, (128, 2048, 32, 8): 2.9, (256, 1024, 32, 8): 2.9, (1, 32768, 32, 8): 2.3,
    (16, 4096, 32, 8): 2.6, (64, 512, 32, 8): 2.2, (64, 4096, 64, 8): 2.9, (64, 4096, 32, 32): 3.0,
}


def fmt(x):
    return "-" if x is None else f"{x:.2f}"


def main():
    ours = json.load(open(sys.argv[1]))
    peers = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else {"decode": []}
    by_shape = {}
    for r in ours["decode"]:
        by_shape.setdefault((r["B"], r["KV"], r["H"], r["Hkv"]), {})[r["variant"]] = r
    peer = {(r["B"], r["KV"], r["H"], r["Hkv"]): r for r in peers.get("decode", [])}
    first = ours["decode"][0]
    print(f"### Decode, {ours['device']}, {ours['date']}: {first['dtype']}, page {first['page']}, {first['layout']}, "
          f"D={first['D']}; TB/s of K+V bytes read (CUDA events, median)")
    print()
    print("Timing: ours per run from CUDA-graph replays of 10 back-to-back runs (the serving loop's case); the "
          "'1 call' column times single run() calls between events, the host's launch overhead included. "
          "Contiguous-cache peers: 10 back-to-back calls per event pair; gather+SDPA: one call per pair.")
    print()
    copy = peers.get("copy_TBps") if isinstance(peers.get("copy_TBps"), float) else None
    if copy:
        print(f"Ceiling in this run: device copy {copy:.2f} TB/s (bytes read + written; the '% of copy' column, "
              f"which a read-only kernel can exceed; the HBM3 datasheet says {DATASHEET_TBPS} TB/s). Peers measured in "
              f"the same run ({peers.get('device', '?')}); FlashInfer as recorded in ../shared/PEERS.md.")
        print()
    print("| B x kv_len, H_qo/H_kv | flashinfer4j (auto plan) | % of copy | 1 call | CUDA-core | tensor-core | no split "
          "| FlashInfer (recorded) | cuDNN SDPA, contiguous | FA2 SDPA, contiguous | gather+SDPA, paged | "
          "ours / FlashInfer | ours / cuDNN | target | met |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key, v in by_shape.items():
        auto = v.get("auto", {}).get("TBps")
        best = max(x["TBps"] for x in v.values())
        p = peer.get(key, {})
        cudnn = p.get("cudnn_contig_TBps") if isinstance(p.get("cudnn_contig_TBps"), float) else None
        fa2 = p.get("flash_contig_TBps") if isinstance(p.get("flash_contig_TBps"), float) else None
        gather = p.get("torch_gather_sdpa_TBps")
        fi = FLASHINFER.get(key)
        tgt = TARGET.get(key)
        met = "-" if tgt is None else ("yes" if auto is not None and auto >= tgt else "no")
        path = v.get("auto", {}).get("path", "?").lower().replace("_", "-")
        pct = f"{100 * auto / copy:.0f}%" if auto and copy else "-"
        print(f"| {key[0]} x {key[1]}, {key[2]}/{key[3]} | {fmt(auto)} ({path}, {v.get('auto', {}).get('work_items', 0)} items) "
              f"| {pct} | {fmt(v.get('auto', {}).get('single_call_TBps'))} | {fmt(v.get('cuda', {}).get('TBps'))} | {fmt(v.get('tensor', {}).get('TBps'))} "
              f"| {fmt(v.get('nosplit', {}).get('TBps'))} | {fmt(fi)} | {fmt(cudnn)} | {fmt(fa2)} | {fmt(gather)} "
              f"| {fmt(auto / fi) if auto and fi else '-'} | {fmt(auto / cudnn) if auto and cudnn else '-'} "
              f"| {fmt(tgt)} | {met} |")
    print()
    print(f"(best variant per shape, for reference: "
          + ", ".join(f"{k[0]}x{k[1]} {k[2]}/{k[3]}: {max(x['TBps'] for x in v.values()):.2f}" for k, v in by_shape.items())
          + ")")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Issue 3's secondary targets from one GPU-machine run: fp16, HND and head_dim 64/256 within 5% of the bf16/NHD/
D=128 figure of the same shape, page size 1 within 15%. Reads the runner's JSON files (base first).

usage: decode_variants_report.py base.json variant.json... > decode_variants.md
"""
import json
import sys


def auto_rows(path):
    d = json.load(open(path))
    return d, {(r["B"], r["KV"], r["H"], r["Hkv"]): r for r in d["decode"] if r["variant"] == "auto"}


def main():
    base_doc, base = auto_rows(sys.argv[1])
    print(f"### Decode variants, {base_doc['device']}, {base_doc['date']}: TB/s of the automatic plan (graph replays) "
          "against bf16 / NHD / D=128 / page 16 of the same run")
    print()
    print("| variant | shape | TB/s | base TB/s | ratio | allowed | met |")
    print("|---|---|---|---|---|---|---|")
    for path in sys.argv[2:]:
        doc, rows = auto_rows(path)
        for key, r in rows.items():
            b = base.get(key)
            if not b:
                continue
            label = f"{r['dtype']} {r['layout']} D={r['D']} page {r['page']}"
            allowed = 0.85 if r["page"] == 1 else 0.95
            ratio = r["TBps"] / b["TBps"]
            print(f"| {label} | {key[0]} x {key[1]}, {key[2]}/{key[3]} | {r['TBps']:.2f} | {b['TBps']:.2f} | "
                  f"{ratio:.2f} | >= {allowed:.2f} | {'yes' if ratio >= allowed else 'no'} |")


if __name__ == "__main__":
    main()

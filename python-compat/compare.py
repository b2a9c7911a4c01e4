#!/usr/bin/env python3
"""Compares flashinfer4j's outputs with the expected ones, case by case; numpy alone suffices.

    python3 python-compat/compare.py CASES.safetensors OUT.safetensors [options]

CASES is a file in the golden layout (golden/flashinfer-0.2.5/*.safetensors, or one written by
make_cases.py): tensors <case>.<field>, metadata "cases" (JSON: case -> {op, parameters}) and "source".
OUT is what `java -jar benchmarks.jar compat run CASES OUT` wrote: <case>.o and <case>.lse (merge: .v and .s) and
a "cases" metadata whose entries carry "status": "ok", "unsupported: <reason>" or "error: <message>".

A case PASSes when every element satisfies |out - expected| <= tol * (1 + |expected|) (tolerance absolute and
relative, as in the Java tests), with tol = 1e-2 for bf16 outputs, 2e-3 for fp16, 1e-3 for the LSE; an expected
-inf must come out as -inf, and NaN never passes. "unsupported" cases are SKIPped; anything else FAILs.

One documented exception, the same as GoldenPrefillTest's: the LSE of a prefill op (batch_prefill_paged,
batch_prefill_ragged, single_prefill) whose expected outputs came from FlashInfer itself (the case's
"expected_from", or else the file's "source" metadata, names FlashInfer, e.g. the golden files' "FlashInfer 0.2.5
FA2 kernels ...") is held to max(1e-3 * (1 + |lse|), log2(1 + u)), u the unit roundoff of the output dtype
(2^-9 bf16: 2.82e-3; 2^-12 fp16: 3.5e-4, never looser than 1e-3). FlashInfer's FA2 prefill sums the softmax
denominator over probabilities already rounded to bf16/fp16 (they feed its P.V tensor-core product), so its LSE
sits up to that far from the exact value on rows with a small LSE. The table shows the bound in the tol column
("max(0.001,0.00282)") and a note counts the elements that needed it. Expectations from the float64 reference
(make_cases.py without FlashInfer, or --recompute) always get the plain 1e-3.
The table shows the largest |out - expected| ("max abs err"), the largest |out - expected| / (1 + |expected|)
("max rel err", the measure held to tol) and the largest LSE difference.
The expected outputs are the ones in CASES; with --recompute (or when CASES has none for a case) a float64
reference is computed from the case's inputs with numpy (reference.py).

Prints one table row per case; exits 1 if any case FAILs, 2 on a usage or file error, else 0.
"""

import argparse
import json
import math
import os
import re
import sys

sys.dont_write_bytecode = True  # keep python-compat/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

TOL = {"BF16": 1e-2, "F16": 2e-3, "F32": 1e-3}
LSE_TOL = 1e-3
OUTPUT_FIELDS = {"merge_state": ("v", "s"), "merge_states": ("v", "s")}
DEFAULT_FIELDS = ("o", "lse")
PREFILL_OPS = ("batch_prefill_paged", "batch_prefill_ragged", "single_prefill")
UNIT_ROUNDOFF = {"BF16": 2.0 ** -9, "F16": 2.0 ** -12}
_FLASHINFER = re.compile(r"\s*flashinfer(?![0-9a-z_])", re.IGNORECASE)  # FlashInfer, not flashinfer4j


def expected_from_flashinfer(params, cases_meta):
    """Whether a case's stored expected outputs were computed by FlashInfer's own kernels: the case's
    "expected_from" (make_cases.py: "flashinfer 0.2.5" or "reference.py float64 ...") when it has one, else the
    file's "source" metadata (the golden files: "FlashInfer 0.2.5 FA2 kernels on ...")."""
    src = params.get("expected_from")
    if src is None:
        src = cases_meta.get("source", "")
    return bool(_FLASHINFER.match(str(src)))


def flashinfer_lse_bound(op, dtype):
    """The absolute LSE bound FlashInfer's prefill may be off by (0 when none applies): log2(1 + u) for the
    rounding of the probabilities its denominator sums, u the unit roundoff of the output dtype."""
    if op not in PREFILL_OPS or dtype not in UNIT_ROUNDOFF:
        return 0.0
    return math.log2(1.0 + UNIT_ROUNDOFF[dtype])


def fields_of(op):
    return OUTPUT_FIELDS.get(op, DEFAULT_FIELDS)


def measure(expected, actual, tol, floor=0.0):
    """Error statistics of actual against expected under |a - e| <= max(tol * (1 + |e|), floor); max_rel is the
    largest |a - e| / (1 + |e|), the measure held to tol (a relative error that does not explode near 0);
    "relaxed" counts the elements inside floor but outside tol * (1 + |e|)."""
    import numpy as np
    e = np.asarray(expected, dtype=np.float64).reshape(-1)
    a = np.asarray(actual, dtype=np.float64).reshape(-1)
    nan = np.isnan(a) | np.isnan(e)
    inf = np.isinf(a) | np.isinf(e)
    inf_bad = inf & ~nan & (a != e)
    fin = ~nan & ~inf
    with np.errstate(invalid="ignore"):
        err = np.abs(a - e)
    ok = np.ones(e.shape, dtype=bool)
    ok[nan | inf_bad] = False
    strict = np.zeros(e.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        strict[fin] = err[fin] <= tol * (1.0 + np.abs(e[fin]))
        ok[fin] = strict[fin] | (err[fin] <= floor)
    res = {
        "n": int(e.size),
        "bad": int((~ok).sum()),
        "nan": int((np.isnan(a)).sum()),
        "inf_mismatch": int(inf_bad.sum()),
        "max_abs": float(err[fin].max()) if fin.any() else 0.0,
        "max_rel": float((err[fin] / (1.0 + np.abs(e[fin]))).max()) if fin.any() else 0.0,
        "relaxed": int((fin & ok & ~strict).sum()),
    }
    if res["bad"]:
        i = int(np.flatnonzero(~ok)[0])
        res["first_bad"] = {"index": i, "expected": float(e[i]), "actual": float(a[i])}
    return res


def _params_get(p, key, default=None):
    v = p.get(key, default)
    return default if v is None else v


def _opts(p):
    o = {
        "window_left": int(_params_get(p, "window_left", -1)),
        "logits_soft_cap": p.get("logits_soft_cap"),
        "sm_scale": p.get("sm_scale"),
        "pos_encoding": _params_get(p, "pos_encoding", "NONE"),
        "rope_scale": float(_params_get(p, "rope_scale", 1.0)),
        "rope_theta": float(_params_get(p, "rope_theta", 1e4)),
    }
    return o


def recompute(op, p, t):
    """numpy float64 reference of one case from its inputs t (field -> array). Returns (out, lse) or (v, s)."""
    import reference as ref
    layout = _params_get(p, "layout", "NHD")
    mask = t.get("custom_mask") if p.get("custom_mask") else None
    if op == "batch_decode_paged":
        return ref.batch_decode_paged(t["q"], t["k_cache"], t["v_cache"], t["kv_indptr"], t["kv_indices"],
                                      t["kv_last_page_len"], layout=layout, **_opts(p))
    if op == "batch_prefill_paged":
        return ref.batch_prefill_paged(t["q"], t["qo_indptr"], t["k_cache"], t["v_cache"], t["kv_indptr"],
                                       t["kv_indices"], t["kv_last_page_len"], layout=layout,
                                       causal=bool(p.get("causal")), custom_mask=mask, **_opts(p))
    if op == "batch_prefill_ragged":
        return ref.batch_prefill_ragged(t["q"], t["qo_indptr"], t["k"], t["v"], t["kv_indptr"],
                                        causal=bool(p.get("causal")), custom_mask=mask, **_opts(p))
    if op == "single_decode":
        return ref.single_decode(t["q"], t["k"], t["v"], layout=layout, **_opts(p))
    if op == "single_prefill":
        return ref.single_prefill(t["q"], t["k"], t["v"], layout=layout, causal=bool(p.get("causal")),
                                  custom_mask=mask, **_opts(p))
    if op == "merge_state":
        return ref.merge_state(t["v_a"], t["s_a"], t["v_b"], t["s_b"])
    if op == "merge_states":
        return ref.merge_states(t["v_states"], t["s_states"])
    raise ValueError("no reference for op %r" % (op,))


def load(path, what):
    import stio
    try:
        tensors, meta = stio.read(path)
        dts = stio.dtypes(path)
    except (OSError, ValueError) as e:
        raise SystemExit2("cannot read %s %s: %s" % (what, path, e))
    try:
        cases = json.loads(meta.get("cases", "null"))
    except ValueError as e:
        raise SystemExit2("%s %s: metadata 'cases' is not JSON: %s" % (what, path, e))
    if not isinstance(cases, dict):
        raise SystemExit2("%s %s has no 'cases' metadata object" % (what, path))
    return tensors, dts, cases, meta


class SystemExit2(Exception):
    pass


def fmt(x):
    if x is None:
        return "-"
    if isinstance(x, float) and (math.isinf(x) or math.isnan(x)):
        return str(x)
    return "%.2e" % x


def compare(cases_path, out_path, only=(), force_recompute=False):
    """Returns a list of result dicts, one per case."""
    ct, cdt, cases, cmeta = load(cases_path, "cases file")
    ot, odt, ocases, ometa = load(out_path, "output file")
    results = []
    for name, p in cases.items():
        if only and name not in only:
            continue
        op = p.get("op", "?")
        r = {"case": name, "op": op}
        results.append(r)
        st = ocases.get(name, {}).get("status") if isinstance(ocases.get(name), dict) else None
        fo, fl = fields_of(op)
        if name not in ocases and (name + "." + fo) not in ot:
            r.update(result="FAIL", note="missing from the output file")
            continue
        if st is None:
            st = "ok" if (name + "." + fo) in ot else "error: no status and no output"
        if st.startswith("unsupported"):
            r.update(result="SKIP", note=st)
            continue
        if st != "ok":
            r.update(result="FAIL", note=st)
            continue
        inputs = {k[len(name) + 1:]: v for k, v in ct.items() if k.startswith(name + ".")}
        have_expected = (name + "." + fo) in ct and (name + "." + fl) in ct
        if have_expected and not force_recompute:
            exp_o, exp_l = ct[name + "." + fo], ct[name + "." + fl]
            exp_dtype = cdt[name + "." + fo]
            r["expected"] = "file"
        else:
            try:
                exp_o, exp_l = recompute(op, p, inputs)
            except (KeyError, ValueError) as e:
                r.update(result="FAIL", note="cannot compute a reference: %s" % e)
                continue
            exp_dtype = odt.get(name + "." + fo, "F32")
            r["expected"] = "numpy float64 reference"
        missing = [f for f in (fo, fl) if (name + "." + f) not in ot]
        if missing:
            r.update(result="FAIL", note="status ok but no %s in the output" % ", ".join(missing))
            continue
        act_o, act_l = ot[name + "." + fo], ot[name + "." + fl]
        tol = TOL.get(exp_dtype, 1e-3)
        r["tol"] = tol
        r["lse_tol"] = LSE_TOL
        lse_floor = 0.0
        if r["expected"] == "file" and expected_from_flashinfer(p, cmeta):
            lse_floor = flashinfer_lse_bound(op, exp_dtype)
        if lse_floor > LSE_TOL:  # below 1e-3 it never loosens 1e-3 * (1 + |lse|)
            r["lse_floor"] = lse_floor
        else:
            lse_floor = 0.0
        notes = []
        if tuple(act_o.shape) != tuple(exp_o.shape) or tuple(act_l.shape) != tuple(exp_l.shape):
            r.update(result="FAIL", note="shape %s/%s, expected %s/%s" % (
                list(act_o.shape), list(act_l.shape), list(exp_o.shape), list(exp_l.shape)))
            continue
        if odt.get(name + "." + fo) != exp_dtype and r["expected"] == "file":
            notes.append("output dtype %s, expected %s" % (odt.get(name + "." + fo), exp_dtype))
        mo = measure(exp_o, act_o, tol)
        ml = measure(exp_l, act_l, LSE_TOL, lse_floor)
        r.update(max_abs=mo["max_abs"], max_rel=mo["max_rel"], lse_max_abs=ml["max_abs"], o_stats=mo, lse_stats=ml)
        for label, m in ((fo, mo), (fl, ml)):
            if m["bad"]:
                fb = m["first_bad"]
                notes.append("%s: %d/%d outside (nan %d, inf mismatch %d), first at %d: expected %r got %r" % (
                    label, m["bad"], m["n"], m["nan"], m["inf_mismatch"], fb["index"], fb["expected"],
                    fb["actual"]))
        if ml["relaxed"]:
            notes.append("%s: %d/%d within FlashInfer's %s prefill bound log2(1 + u) = %.3g but outside 1e-3 * "
                         "(1 + |lse|) (max abs err %.3g): expected from FlashInfer, which sums %s-rounded "
                         "probabilities" % (fl, ml["relaxed"], ml["n"], exp_dtype.lower(), lse_floor, ml["max_abs"],
                                            exp_dtype.lower()))
        r["result"] = "FAIL" if (mo["bad"] or ml["bad"]) else "PASS"
        if notes:
            r["note"] = "; ".join(notes)
    for name in only:
        if name not in cases:
            results.append({"case": name, "op": "?", "result": "FAIL", "note": "no such case in " + cases_path})
    return results, cmeta, ometa


def print_table(results, out=sys.stdout):
    head = ("case", "op", "max abs err", "max rel err", "lse max abs", "tol (o/lse)", "result")
    rows = []
    for r in results:
        if "lse_floor" in r:
            tol = "%g/max(%g,%.3g)" % (r["tol"], r["lse_tol"], r["lse_floor"])
        else:
            tol = "%g/%g" % (r["tol"], r["lse_tol"]) if "tol" in r else "-"
        rows.append((r["case"], r["op"], fmt(r.get("max_abs")), fmt(r.get("max_rel")), fmt(r.get("lse_max_abs")),
                     tol, r["result"]))
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = "  ".join("%-*s" % (w, h) for w, h in zip(widths, head))
    print(line, file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r, row in zip(results, rows):
        print("  ".join("%-*s" % (w, c) for w, c in zip(widths, row)), file=out)
        if r.get("note"):
            print("    " + r["note"], file=out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("cases", help="cases file (golden layout)")
    ap.add_argument("output", help="flashinfer4j output file (compat run)")
    ap.add_argument("--case", action="append", default=[], help="compare only this case (repeatable)")
    ap.add_argument("--recompute", action="store_true",
                    help="compare against a numpy float64 reference computed from the inputs, not the stored outputs")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--numpy-only", action="store_true",
                    help="refuse to import torch/safetensors (proves the comparison needs numpy alone)")
    args = ap.parse_args(argv)
    if args.numpy_only:
        for mod in ("torch", "safetensors"):
            sys.modules[mod] = None  # any import of them now raises ImportError
    try:
        import numpy  # noqa: F401
    except ImportError:
        print("compare.py: numpy is required (python3 -m pip install numpy)", file=sys.stderr)
        return 2
    try:
        results, cmeta, ometa = compare(args.cases, args.output, args.case, args.recompute)
    except SystemExit2 as e:
        print("compare.py: %s" % e, file=sys.stderr)
        return 2
    print("cases:  %s  (%s)" % (args.cases, cmeta.get("source", "no source")))
    print("output: %s  (%s)" % (args.output, ometa.get("source", "no source")))
    print()
    print_table(results)
    n = {k: sum(1 for r in results if r["result"] == k) for k in ("PASS", "FAIL", "SKIP")}
    print()
    print("%d PASS, %d FAIL, %d SKIP" % (n["PASS"], n["FAIL"], n["SKIP"]))
    print("PASS: |out - expected| <= tol * (1 + |expected|) everywhere (rel err = |out - expected| / (1 + |expected|)"
          " <= tol), -inf where expected, no NaN; tol bf16 1e-2, fp16 2e-3, lse 1e-3")
    if any("lse_floor" in r for r in results):
        print("lse max(1e-3, b): prefill LSE expected from FlashInfer itself is held to max(1e-3 * (1 + |lse|), b),"
              " b = log2(1 + u) (u = 2^-9 bf16, 2^-12 fp16): FlashInfer sums bf16/fp16-rounded probabilities"
              " (as GoldenPrefillTest)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cases": args.cases, "output": args.output, "results": results}, f, indent=1)
    if not results:
        print("compare.py: no case was compared", file=sys.stderr)
        return 2
    return 1 if n["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())

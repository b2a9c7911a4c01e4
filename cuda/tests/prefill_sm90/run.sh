#!/bin/bash
# One device call: (re)build if the carried library does not load, SASS check, smoke per variant, correctness
# sweep, timing beside cuDNN / FA2, compute-sanitizer. Layout of the carried folder:
#   include/fi4j/attention/hopper/*.cuh  tests/*.py *.cu *.sh  tests/libprefill_sm90.so
# Env: SWEEP_VARIANTS (default "0"), BENCH_VARIANTS (default "0 1 2 3 4"), SANITIZE (default 1).
here=$(cd "$(dirname "$0")" && pwd)
if [ -d "$here/tests" ]; then cd "$here/tests"; inc=../include; else cd "$here"; inc=../../include; fi
OUT=${OUT:-/tmp/fi4j_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv | tee "$OUT/gpu.txt"
if ! python3 -c "import ctypes; ctypes.CDLL('./libprefill_sm90.so')" 2>"$OUT/load_err.txt"; then
  echo "carried library does not load ($(head -c 200 "$OUT/load_err.txt")); building here"
  bash build.sh $inc ./libprefill_sm90.so > "$OUT/build.txt" 2>&1 || { echo BUILD FAILED; tail -30 "$OUT/build.txt"; exit 1; }
fi
cuobjdump --dump-sass libprefill_sm90.so > "$OUT/sass.txt" 2>&1
echo "SASS: HGMMA $(grep -c HGMMA "$OUT/sass.txt"), LDL/STL $(grep -cE '\b(LDL|STL)\b' "$OUT/sass.txt"), UTMALDG $(grep -c UTMALDG "$OUT/sass.txt")"
for v in ${SMOKE_VARIANTS:-0 1 2 3 4 5}; do
  timeout 25 python3 test_prefill_sm90.py smoke $v > "$OUT/smoke_v$v.txt" 2>&1; rc=$?
  echo "smoke v$v rc=$rc: $(tail -1 "$OUT/smoke_v$v.txt")"
  [ $rc -ne 0 ] && grep -m5 -E "FAIL|Error|error" "$OUT/smoke_v$v.txt"
done
timeout ${SWEEP_TIMEOUT:-150} python3 test_prefill_sm90.py sweep ${SWEEP_VARIANTS:-0} 2>&1 | tee "$OUT/sweep.txt" | grep -E "FAIL|passed|Error" | head -40
echo "--- sweep summary"; grep -E "^v[0-9]" "$OUT/sweep.txt"
timeout ${BENCH_TIMEOUT:-90} python3 bench_prefill_sm90.py ${BENCH_VARIANTS:-0 1 2 3 4} 2>&1 | tee "$OUT/bench.txt"
if [ "${SANITIZE:-1}" = 1 ]; then
  for tool in ${SANITIZE_TOOLS:-memcheck racecheck synccheck}; do
    timeout ${SANITIZE_TIMEOUT:-60} compute-sanitizer --tool $tool --kernel-name kns=prefill_sm90 python3 sanitize_prefill_sm90.py > "$OUT/san_$tool.txt" 2>&1
    echo "sanitizer $tool rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/san_$tool.txt" | tail -2 | tr '\n' ' ')"
  done
fi

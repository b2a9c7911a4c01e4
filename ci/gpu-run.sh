#!/usr/bin/env bash
# Everything the GPU machine runs for one submission, in one call (the device tool's machine has no Java: the
# bundle brings a runtime). Carry target/gpu-bundle.tar.gz and benchmarks/target/benchmarks.jar.
#   ci/gpu-run.sh [tests] [memcheck] [racecheck] [harness] [prefill-harness] [demo] [spec-verify] [bench]
#                 [prefill-bench] [variants] [compat] [jmh] [jit] [jit-smoke] [decode-bench]
#                 (default: tests harness demo)
# Results come back in $OUT (or ./gpu-out), few files as the device tool allows: logs.tgz (every log and output),
# decode.json and decode_table.md when the bench step ran, prefill.json and prefill_table.md when prefill-bench ran,
# peers.json (the PyTorch peers, run once per call for whichever bench steps ask), decode_variants.md, jit.txt.
# PREFILL_ARGS adds options to `bench prefill` (e.g. "--quick" or "--dim 128"); SANITIZER_SELECT limits memcheck and
# racecheck to some tests (launcher options, e.g. "--select-class io.github.flashinfer4j.attention.GpuPlanValueTest").
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${OUT:-$root/gpu-out}"
mkdir -p "$dest"
export PATH=/usr/local/cuda/bin:$PATH
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(tests harness demo)
work="${GPU_WORK:-/tmp/fi4j-gpu}"  # another GPU_WORK lets two runs of this script go side by side
rm -rf "$work" && mkdir -p "$work/out"
out="$work/out"
tar xzf "$root/target/gpu-bundle.tar.gz" -C "$work"
bundle="$work/gpu-bundle"
java=("$bundle/runtime/bin/java" -Dorg.bytedeco.javacpp.cachedir="$work/jc")
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
status=0
# the PyTorch peers (python-compat/torch_peers.py: prefill and decode), once per call whichever steps need them
peers() {
  [[ -f "$out/peers.txt" ]] && return 0
  (cd "$out" && OUT="$out" PYTHONUNBUFFERED=1 python3 "$root/python-compat/torch_peers.py" > "$out/peers.txt" 2>&1) ||
    echo "peers failed (see peers.txt in logs.tgz)"
}
for step in "${steps[@]}"; do
  echo "== $step"
  case "$step" in
    tests) "$bundle/run-tests.sh" > "$out/tests.txt" 2>&1 || status=1; grep -E "✘" "$out/tests.txt" | head -20; tail -1 "$out/tests.txt" ;;
    memcheck|racecheck)
      # shellcheck disable=SC2086 # SANITIZER_SELECT is a list of launcher options (e.g. --select-class X)
      SANITIZER=$step "$bundle/run-tests.sh" ${SANITIZER_SELECT:-} > "$out/$step.txt" 2>&1 || status=1
      grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$out/$step.txt" | tail -2; tail -1 "$out/$step.txt" ;;
    harness)
      nvcc -std=c++17 -O2 -arch=sm_90 --expt-relaxed-constexpr -I"$root/cuda/include" "$root"/cuda/tests/decode_harness.cu "$root"/cuda/kernels/attention/decode*.cu \
        "$root/cuda/kernels/attention/append.cu" -o "$work/harness" && "$work/harness" > "$out/harness.txt" 2>&1 || status=1
      grep -E "^FAIL" "$out/harness.txt" | head; tail -1 "$out/harness.txt" ;;
    prefill-harness)
      nvcc -std=c++17 -O2 -arch=sm_90 --expt-relaxed-constexpr -I"$root/cuda/include" -I"$root/cpp/src" "$root/cuda/tests/prefill_harness.cu" \
        "$root/cuda/kernels/attention/prefill.cu" "$root/cpp/src/attention/prefill_plan.cpp" -o "$work/ph" && "$work/ph" > "$out/prefill_harness.txt" 2>&1 || status=1
      grep -E "^FAIL" "$out/prefill_harness.txt" | head; grep -E "passed|split|unsplit" "$out/prefill_harness.txt"; tail -13 "$out/prefill_harness.txt" ;;
    demo) "${java[@]}" -jar "$root/benchmarks/target/benchmarks.jar" demo 2>&1 | tee "$out/demo.txt" | tail -12 ;;
    spec-verify)
      "${java[@]}" -jar "$root/benchmarks/target/benchmarks.jar" spec-verify 2>&1 | tee "$out/spec_verify.txt" | tail -22
      [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1 ;;
    bench)
      "${java[@]}" -jar "$root/benchmarks/target/benchmarks.jar" bench decode --out "$out" | tee "$out/bench.txt" || status=1
      peers
      python3 "$root/python-compat/decode_report.py" "$out/decode.json" "$out/peers.json" > "$out/decode_table.md" && cat "$out/decode_table.md" ;;
    prefill-bench)
      # shellcheck disable=SC2086 # PREFILL_ARGS is a list of options
      "${java[@]}" -jar "$root/benchmarks/target/benchmarks.jar" bench prefill --out "$out" ${PREFILL_ARGS:-} |
        tee "$out/prefill-bench.txt" || status=1
      peers
      pj=(); [[ -f "$out/peers.json" ]] && pj=("$out/peers.json")
      python3 "$root/python-compat/prefill_report.py" "$out/prefill.json" "${pj[@]}" > "$out/prefill_table.md" &&
        cat "$out/prefill_table.md" || status=1 ;;
    compat)
      P="$root/python-compat"
      python3 "$P/make_cases.py" --preset sweep --source reference -o "$work/sweep.safetensors" > /dev/null &&
      python3 "$P/make_cases.py" --op batch_decode_paged --batch 16 --kv-len 1:2048 --heads 32/8 --head-dim 128 \
        --page-size 16 --dtype bf16 --seed 7 --count 3 --source reference -o "$work/rand.safetensors" > /dev/null &&
      python3 "$P/make_cases.py" --op batch_decode_paged --batch 8 --kv-len 0:600 --heads 64/8 --head-dim 64 \
        --page-size 1 --layout HND --dtype fp16 --rope --soft-cap 30 --seed 21 --count 2 --source reference \
        -o "$work/rand.safetensors" --append > /dev/null || status=1
      cp "$root/golden/flashinfer-0.2.5/flashinfer-0.2.5-golden-decode.safetensors" "$work/golden.safetensors"
      for f in golden sweep rand; do
        "${java[@]}" -jar "$root/benchmarks/target/benchmarks.jar" compat run "$work/$f.safetensors" \
          "$work/$f-out.safetensors" --device cuda > "$out/compat-$f.txt" 2>&1 || status=1
        python3 "$P/compare.py" "$work/$f.safetensors" "$work/$f-out.safetensors" | tee "$out/compare-$f.txt" | tail -1 || status=1
      done ;;
    variants)
      B="${java[@]} -jar $root/benchmarks/target/benchmarks.jar bench decode --out $out --quick --variants auto"
      S="--shapes 1x32768:32/8,16x4096:32/8,64x4096:32/8,64x512:32/8"
      $B $S --name v-base > "$out/variants.txt" || status=1
      $B $S --name v-fp16 --dtype F16 >> "$out/variants.txt" || status=1
      $B $S --name v-hnd --layout HND >> "$out/variants.txt" || status=1
      $B $S --name v-d64 --dim 64 >> "$out/variants.txt" || status=1
      $B $S --name v-d256 --dim 256 >> "$out/variants.txt" || status=1
      $B $S --name v-p1 --page 1 >> "$out/variants.txt" || status=1
      python3 "$root/python-compat/decode_variants_report.py" "$out"/v-base.json "$out"/v-fp16.json "$out"/v-hnd.json \
        "$out"/v-d64.json "$out"/v-d256.json "$out"/v-p1.json > "$out/decode_variants.md" && cat "$out/decode_variants.md" ;;
    jmh)
      "${java[@]}" -jar "$root/benchmarks/target/benchmarks.jar" jmh -f 2 -wi 3 -i 5 -w 1 -r 1 -p device=cuda \
        -jvmArgsAppend "-Dorg.bytedeco.javacpp.cachedir=$work/jc" HostOverhead 2>&1 | tee "$out/jmh.txt" | tail -6 ;;
    jit)
      # Run-time compilation across processes: per op (decode, prefill) and head dim, a cold process compiles into a fresh cache directory,
      # a second process must find the cubin there without compiling. Targets: cold compile < 10 s, cached first
      # use (load from disk + first call) < 50 ms.
      jdir="$work/jit-cache"; rm -rf "$jdir"
      for op in decode prefill; do
        for d in 96 192; do
          for pass in cold cached; do
            "${java[@]}" -jar "$root/benchmarks/target/benchmarks.jar" jit-probe --op $op --cache-dir "$jdir" \
              --head-dim $d > "$work/jit-$op-$d-$pass.txt" 2>&1 || status=1
            line=$(grep "^jit-probe:" "$work/jit-$op-$d-$pass.txt" || tail -3 "$work/jit-$op-$d-$pass.txt")
            echo "$pass $line" >> "$out/jit.txt"
            if [[ $pass == cached && $line != *"compiled=false source=DISK_CACHE"* ]]; then
              echo "FAIL: the second process did not find $op head_dim $d in the cache" >> "$out/jit.txt"; status=1
            fi
          done
        done
      done
      cat "$out/jit.txt" ;;
    jit-smoke)
      # The C API alone (no Java): build the library with the smoke program and run it.
      cmake -S "$root" -B "$work/build" -DFI4J_BUILD_JIT_SMOKE=ON -DFI4J_BUILD_TESTS=OFF \
        -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc > "$out/jit-smoke-build.txt" 2>&1 &&
      cmake --build "$work/build" -j "$(nproc)" --target fi4j_jit_smoke >> "$out/jit-smoke-build.txt" 2>&1 &&
      "$work/build/fi4j_jit_smoke" "$work/jit-smoke-cache" > "$out/jit-smoke.txt" 2>&1 || status=1
      tail -3 "$out/jit-smoke-build.txt"; grep -E "^FAIL|^prepare" "$out/jit-smoke.txt"; tail -1 "$out/jit-smoke.txt" ;;
    decode-bench)
      # cuda/tests/decode_bench.cu (CUDA events, clean-L2 flush) at each of DECODE_BENCH_DIMS (default 64 128 256);
      # DECODE_BENCH_FLAGS adds compile-time knobs (e.g. "-DFI4J_MERGE_ITEMS_PER_LANE=4"), DECODE_BENCH_SHAPES limits
      # the shapes (name prefixes, e.g. "1x32768 16x4096"). Output: decode_bench.txt.
      dims=(${DECODE_BENCH_DIMS:-64 128 256})
      for d in "${dims[@]}"; do
        # shellcheck disable=SC2086 # DECODE_BENCH_FLAGS is a list of options
        nvcc -std=c++17 -O3 -arch=sm_90 --expt-relaxed-constexpr -DFI4J_BENCH_D="$d" ${DECODE_BENCH_FLAGS:-} \
          -I"$root/cuda/include" "$root/cuda/tests/decode_bench.cu" "$root"/cuda/kernels/attention/decode*.cu -o "$work/db$d" &
      done
      wait
      for d in "${dims[@]}"; do
        echo "D=$d ${DECODE_BENCH_FLAGS:-}"
        if [[ -n "${DECODE_BENCH_SHAPES:-}" ]]; then
          "$work/db$d" read none | head -3
          for sh in $DECODE_BENCH_SHAPES; do "$work/db$d" read "$sh" | tail -n +4; done
        else
          "$work/db$d" read
        fi || status=1
      done > "$out/decode_bench.txt" 2>&1
      cat "$out/decode_bench.txt" ;;
    *) echo "unknown step $step"; status=2 ;;
  esac
done
tar czf "$dest/logs.tgz" -C "$work" out
# at most 8 files with logs.tgz
for f in decode.json peers.json decode_table.md decode_variants.md prefill.json prefill_table.md jit.txt; do [[ -f "$out/$f" ]] && cp "$out/$f" "$dest/"; done
exit $status

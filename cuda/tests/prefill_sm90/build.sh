#!/bin/bash
# Builds libprefill_sm90.so (all test variants) from the headers. Usage: build.sh INCLUDE_DIR OUT_SO [extra nvcc flags]
set -e
here=$(cd "$(dirname "$0")" && pwd)
inc=${1:-$here/../../include}
out=${2:-$here/libprefill_sm90.so}
shift 2 || true
${NVCC:-/usr/local/cuda/bin/nvcc} -gencode=arch=compute_90a,code=sm_90a -std=c++17 -O3 --expt-relaxed-constexpr \
  -I"$inc" -Xptxas -v -Xcompiler -fPIC -shared "$@" -o "$out" "$here/prefill_sm90_capi.cu"

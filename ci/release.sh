#!/usr/bin/env bash
# Release build, from a clean tree: the natives classifier jars of the four architectures (linux-x86_64-sm80,
# -sm89, -sm90, -sm100), the API jar, and flashinfer4j-platform (the API plus all four natives jars as one
# dependency), installed into the local Maven repository. Prints the build time of each step, the size of each
# jar and the totals, and writes them to target/release-report.txt. Runs the C++ host tests of every
# architecture, the Java suite (sm90 natives) and the platform module's load tests unless --skip-tests.
#
# Needs what `mvn verify` needs (JDK 17+, Maven, CMake, g++, nvcc); no GPU. sm100 needs CUDA >= 12.8 (nvcc 13 here).
# On the CI machine class (2 cores) it takes about 4.5 minutes (README: "Release build").
#
# Usage: ci/release.sh [--sm90a] [--skip-tests] [-- extra mvn args]
#   --sm90a   also build architecture-specific sm_90a code into the sm90 jar (or SM90A=1). Only kernels that
#             use Hopper-only instructions (wgmma, TMA bulk copies, setmaxnreg) need it; none does today, so the
#             sm90 jar holds plain sm_90 code (SASS + PTX), which also runs on sm_90a devices. Turn it on by
#             default when the first such kernel lands.
set -euo pipefail
cd "$(dirname "$0")/.."

SM90A=${SM90A:-0}
SKIP_TESTS=false
MVN_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --sm90a) SM90A=1 ;;
    --skip-tests) SKIP_TESTS=true ;;
    --) shift; MVN_ARGS=("$@"); break ;;
    *) echo "usage: ci/release.sh [--sm90a] [--skip-tests] [-- extra mvn args]" >&2; exit 2 ;;
  esac
  shift
done

NVCC=${CUDA_COMPILER:-/usr/local/cuda/bin/nvcc}
nvcc_version=$("$NVCC" --version | sed -n 's/.*release \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
read -r nvcc_major nvcc_minor <<<"$nvcc_version"
if [ $(( nvcc_major * 100 + nvcc_minor )) -lt 1208 ]; then
  echo "ci/release.sh: sm100 needs CUDA >= 12.8; $NVCC is $nvcc_major.$nvcc_minor" >&2
  exit 1
fi

# -Prelease: sources and javadoc jars beside each published jar, no test jar (pom.xml, profile "release")
mvn_() { mvn -B -q -Prelease -Dcuda.compiler="$NVCC" -DskipTests="$SKIP_TESTS" "${MVN_ARGS[@]}" "$@"; }

report=target/release-report.txt
rows=()
start_all=$(date +%s)
step() {  # step NAME mvn-args...: runs and times one Maven build
  local name=$1 t0
  shift
  t0=$(date +%s)
  echo "== $name" >&2
  mvn_ "$@"
  rows+=("$name $(( $(date +%s) - t0 ))")
}
size_of() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

mvn_ -Pplatform clean
step parent -N install
for arch in sm80 sm89 sm90 sm100; do
  extra=()
  if [ "$arch" = sm90 ] && [ "$SM90A" = 1 ]; then
    extra=(-Dcuda.architectures="90;90a")
  fi
  step "$arch" -pl presets -P"$arch" "${extra[@]}" install
done
step api -pl java-bindings install
step platform -Pplatform -pl platform install
total_s=$(( $(date +%s) - start_all ))

version=$(sed -n 's:^  <version>\(.*\)</version>:\1:p' pom.xml | head -1)
mkdir -p target
{
  echo "flashinfer4j $version release build: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, nvcc $nvcc_major.$nvcc_minor," \
    "tests $([ "$SKIP_TESTS" = true ] && echo skipped || echo run), sm90 CUDA architectures $([ "$SM90A" = 1 ] && echo '90;90a' || echo 90)"
  printf '%-10s %8s  %12s  %s\n' step seconds size jar
  total_bytes=0
  for row in "${rows[@]}"; do
    read -r name secs <<<"$row"
    case $name in
      sm*) jar=presets/target/flashinfer4j-presets-$version-linux-x86_64-$name.jar ;;
      api) jar=java-bindings/target/flashinfer4j-$version.jar ;;
      platform) jar=platform/target/flashinfer4j-platform-$version.jar ;;
      *) jar= ;;
    esac
    if [ -n "$jar" ]; then
      bytes=$(size_of "$jar")
      total_bytes=$(( total_bytes + bytes ))
      printf '%-10s %8d  %12s  %s\n' "$name" "$secs" "$(mib "$bytes")" "$jar"
    else
      printf '%-10s %8d\n' "$name" "$secs"
    fi
  done
  presets=presets/target/flashinfer4j-presets-$version.jar
  total_bytes=$(( total_bytes + $(size_of "$presets") ))
  printf '%-10s %8s  %12s  %s\n' presets "" "$(mib "$(size_of "$presets")")" "$presets (JNI classes; built with each arch)"
  printf '%-10s %8d  %12s  %s\n' total "$total_s" "$(mib "$total_bytes")" \
    "(flashinfer4j-platform pulls in all of these)"
  # what a Central upload needs beside each jar: a sources and a javadoc jar, and a pom with the project metadata
  missing=0
  for base in presets/target/flashinfer4j-presets-$version java-bindings/target/flashinfer4j-$version \
      platform/target/flashinfer4j-platform-$version; do
    for extra in sources javadoc; do
      [ -f "$base-$extra.jar" ] || { echo "missing: $base-$extra.jar"; missing=1; }
    done
  done
  for tag in '<licenses>' '<developers>' '<scm' '<url>'; do
    grep -q "$tag" pom.xml || { echo "missing in pom.xml: $tag"; missing=1; }
  done
  [ -f java-bindings/target/flashinfer4j-$version-tests.jar ] && { echo "unexpected: a tests jar (would be deployed)"; missing=1; }
  [ "$missing" = 0 ] && echo "central: sources and javadoc jars for flashinfer4j, flashinfer4j-presets, flashinfer4j-platform; pom metadata present; no tests jar"
} | tee "$report"

#!/usr/bin/env bash
# Builds the natives classifier jar of every supported architecture (sm80, sm89, sm90, sm100) into
# presets/target/, one CMake build folder per architecture. Usage: ci/build-all-archs.sh [extra mvn args]
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -q -DskipTests install "$@"   # parent, API and the default (sm90) natives
for arch in sm80 sm89 sm90 sm100; do
  start=$(date +%s)
  mvn -B -q -DskipTests -pl presets package -P"$arch" "$@"
  jar=$(ls presets/target/flashinfer4j-presets-*-linux-x86_64-"$arch".jar)
  echo "$arch: $(du -h "$jar" | cut -f1) $(basename "$jar") in $(( $(date +%s) - start )) s"
done

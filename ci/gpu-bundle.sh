#!/usr/bin/env bash
# Builds the Java-less test bundle for a GPU machine: target/gpu-bundle.tar.gz
#
#   gpu-bundle/
#     runtime/        jlinked Temurin 25 (no JDK needed on the GPU machine)
#     lib/            java-bindings jar + its runtime dependencies (presets jar, one native
#                     classifier jar linux-x86_64-smXX, javacpp)
#     tests/          flashinfer4j-<version>-tests.jar
#     golden/         FlashInfer golden files (if found at build time)
#     junit-platform-console-standalone-<v>.jar
#     run-tests.sh    runs every test; prints "N passed, N failed, N skipped"
#     bundle-info.txt what was built, from which commit, for which arch
#
# Usage: ci/gpu-bundle.sh [--no-build] [--no-golden] [-- <extra maven args, e.g. -Psm80>]
#
# Environment: JLINK (default Temurin 25's jlink), MVN (default mvn),
#              GOLDEN_DIR (default <checkout>/golden/flashinfer-0.2.5, the repository's copy).
# See CONTRIBUTING.md ("GPU test bundle").
set -euo pipefail

JUNIT_CONSOLE_VERSION=1.14.1
JUNIT_CONSOLE_JAR="junit-platform-console-standalone-${JUNIT_CONSOLE_VERSION}.jar"
JLINK="${JLINK:-/usr/lib/jvm/temurin-25-jdk-amd64/bin/jlink}"
JLINK_MODULES="java.base,java.logging,java.management,java.xml,jdk.unsupported,jdk.zipfs"  # java.management: JMH
MVN="${MVN:-mvn}"

usage() {
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

build=1
golden=1
mvn_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --no-build) build=0; shift ;;
        --no-golden) golden=0; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; mvn_args=("$@"); break ;;
        *) echo "gpu-bundle: unknown argument '$1' (maven arguments go after --)" >&2; exit 2 ;;
    esac
done

log() { echo "gpu-bundle: $*" >&2; }
die() { echo "gpu-bundle: error: $*" >&2; exit 1; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
[[ -f pom.xml ]] || die "no pom.xml in $root"
[[ -x "$JLINK" ]] || die "jlink not found at $JLINK (set JLINK=/path/to/jdk-25/bin/jlink)"

# Maven arguments always include batch mode and quiet; the extra ones go to every invocation so that
# a profile such as -Psm80 selects the same classifier for the build and for copy-dependencies.
mvn_run() { "$MVN" -B -q ${mvn_args[@]+"${mvn_args[@]}"} "$@"; }

# ---- 1. build (and java-bindings' runtime dependencies) -------------------------------------------
# copy-dependencies runs in the same reactor as package: Maven 3.8 resolves flashinfer4j-presets (plain
# and classifier jar) from the reactor only for modules packaged in the same invocation; a separate
# "mvn -pl java-bindings dependency:copy-dependencies" fails unless the presets were installed, and
# then may copy a stale installed jar. Each module copies into its own target/dependency.
deps="$root/java-bindings/target/dependency"
copy_deps=(dependency:copy-dependencies -DincludeScope=runtime -Dmdep.useBaseVersion=true)
if [[ $build == 1 ]]; then
    log "building: $MVN -B -q -DskipTests package ${mvn_args[*]-}"
    rm -rf "$deps"
    mvn_run -DskipTests package "${copy_deps[@]}"
elif ! compgen -G "$deps/*.jar" >/dev/null; then
    log "--no-build: no $deps yet; re-packaging presets and java-bindings (incremental) to resolve them"
    mvn_run -pl java-bindings -am -DskipTests package "${copy_deps[@]}"
fi

bundle="$root/target/gpu-bundle"
tarball="$root/target/gpu-bundle.tar.gz"
rm -rf "$bundle" "$tarball"
mkdir -p "$bundle/lib" "$bundle/tests"

# ---- 2. jars --------------------------------------------------------------------------------------
# Exactly one file must match a glob; stale jars of another version are an error, not a guess.
one_file() {
    local what="$1"; shift
    local files=()
    local f
    for f in "$@"; do [[ -f "$f" ]] && files+=("$f"); done
    [[ ${#files[@]} -eq 1 ]] || die "expected exactly one $what, found ${#files[@]}: ${files[*]-none} (run without --no-build, or mvn clean)"
    printf '%s\n' "${files[0]}"
}

shopt -s nullglob
main_jars=()
for f in java-bindings/target/flashinfer4j-*.jar; do
    case "$f" in *-tests.jar|*-sources.jar|*-javadoc.jar) continue ;; esac
    main_jars+=("$f")
done
main_jar="$(one_file "java-bindings main jar" ${main_jars[@]+"${main_jars[@]}"})"
tests_jar="$(one_file "java-bindings test jar" java-bindings/target/flashinfer4j-*-tests.jar)"
version="$(basename "$main_jar" .jar)"; version="${version#flashinfer4j-}"

compgen -G "$deps/*.jar" >/dev/null || die "no runtime dependencies were copied to $deps"
cp "$deps"/*.jar "$bundle/lib/"
cp "$main_jar" "$bundle/lib/"
cp "$tests_jar" "$bundle/tests/"

# The native classifier jar (exactly one arch). copy-dependencies brings it when java-bindings declares
# it; otherwise take the one presets built. An arch profile among the maven args (-Psm80) must match.
want=""
for a in ${mvn_args[@]+"${mvn_args[@]}"}; do
    [[ $a == -P* ]] || continue
    IFS=, read -r -a profiles <<< "${a#-P}"
    for prof in ${profiles[@]+"${profiles[@]}"}; do
        prof="${prof#!}"; prof="${prof#-}"
        [[ $prof =~ ^sm[0-9]+$ ]] || continue
        [[ -z $want || $want == "$prof" ]] || die "several arch profiles given: $want and $prof"
        want="$prof"
    done
done
lib_native=("$bundle"/lib/flashinfer4j-presets-*-linux-x86_64-sm*.jar)
if [[ ${#lib_native[@]} -eq 0 ]]; then
    arch="${want:-sm90}"
    built="presets/target/flashinfer4j-presets-$version-linux-x86_64-$arch.jar"
    all_built=(presets/target/flashinfer4j-presets-"$version"-linux-x86_64-sm*.jar)
    if [[ -z $want && ${#all_built[@]} -gt 1 ]]; then
        log "note: presets/target holds ${#all_built[@]} arch jars; taking $arch (pass -- -PsmXX to pick another)"
    fi
    [[ -f $built ]] || die "no native classifier jar among java-bindings' dependencies, and no $built"
    log "adding $(basename "$built") from presets/target (not among java-bindings' runtime dependencies)"
    cp "$built" "$bundle/lib/"
elif [[ ${#lib_native[@]} -gt 1 ]]; then
    die "several native classifier jars among java-bindings' dependencies: ${lib_native[*]}"
fi
lib_native=("$bundle"/lib/flashinfer4j-presets-*-linux-x86_64-sm*.jar)
arch="${lib_native[0]##*-linux-x86_64-}"; arch="${arch%.jar}"
[[ -z $want || $want == "$arch" ]] || die "the dependencies hold the $arch classifier jar but -P$want was given (with --no-build, the last build decides; rebuild without --no-build)"
# If Maven took the presets jars from an older install in the local repository, use the fresh ones.
for f in "$bundle/lib/flashinfer4j-presets-$version.jar" "${lib_native[0]}"; do
    built="presets/target/$(basename "$f")"
    if [[ -f $f && -f $built ]] && ! cmp -s "$built" "$f"; then
        log "replacing $(basename "$f") with the newer copy in presets/target"
        cp "$built" "$f"
    fi
done
for f in "$bundle"/lib/*.jar; do
    case "$(basename "$f")" in
        junit-*|opentest4j-*|apiguardian-*) die "$(basename "$f") is a runtime dependency of java-bindings; JUnit must be test scope (the console launcher bundles its own)" ;;
    esac
done

# ---- 3. JUnit console launcher --------------------------------------------------------------------
log "fetching $JUNIT_CONSOLE_JAR"
mvn_run -N dependency:copy \
    -Dartifact="org.junit.platform:junit-platform-console-standalone:$JUNIT_CONSOLE_VERSION" \
    -DoutputDirectory="$bundle"
[[ -f "$bundle/$JUNIT_CONSOLE_JAR" ]] || die "$JUNIT_CONSOLE_JAR was not copied"

# ---- 4. Java runtime --------------------------------------------------------------------------------
log "jlinking $JLINK_MODULES"
"$JLINK" --add-modules "$JLINK_MODULES" --strip-debug --compress=zip-9 \
    --no-header-files --no-man-pages --output "$bundle/runtime"
if command -v strip >/dev/null; then
    find "$bundle/runtime" -name '*.so' -type f -exec strip --strip-unneeded {} \; 2>/dev/null || true
fi
"$bundle/runtime/bin/java" -version >/dev/null 2>&1 || die "the jlinked runtime does not start"

# ---- 5. golden files ----------------------------------------------------------------------------------
if [[ $golden == 1 ]]; then
    if [[ -z ${GOLDEN_DIR:-} ]]; then
        GOLDEN_DIR="$root/golden/flashinfer-0.2.5"
    fi
    if [[ -d $GOLDEN_DIR ]]; then
        mkdir -p "$bundle/golden"
        cp -R "$GOLDEN_DIR"/. "$bundle/golden/"
        chmod -R u+w "$bundle/golden"
    else
        log "warning: no golden folder at $GOLDEN_DIR; golden tests will be skipped unless GOLDEN is set on the GPU machine"
    fi
fi

# ---- 6. run-tests.sh --------------------------------------------------------------------------------
cat > "$bundle/run-tests.sh" <<'EOF'
#!/usr/bin/env bash
# Runs the flashinfer4j tests with the bundled Java runtime (no JDK or Maven needed).
#
#   ./run-tests.sh                          all tests
#   ./run-tests.sh --select-class io.github.flashinfer4j.attention.SomeTest    (any JUnit console selector
#                                           replaces the class-path scan; other options are passed on)
# Environment:
#   REQUIRE_GPU=1       (default) tests needing a GPU fail instead of skipping when none is usable; 0 to allow skips
#   JAVACPP_CACHE=dir   where native libraries are extracted (default: .javacpp-cache in this folder)
#   GOLDEN=dir          golden folder (default: golden/ in this folder, if present)
#   JAVA_OPTS="..."     extra JVM options, e.g. -Dorg.bytedeco.javacpp.platform.extension=-sm90
#   REPORTS_DIR=dir     console.txt and the XML reports (default: reports/ in this folder)
#   SANITIZER=memcheck|racecheck|initcheck|synccheck   run under compute-sanitizer
#   SANITIZER_OPTS="..."  extra compute-sanitizer options
# Prints "N passed, N failed, N skipped" last and exits with the launcher's exit code
# (0 all passed, 1 failures, 2 no tests found); under SANITIZER, reported errors turn 0 into 1.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
launcher="$here/@JUNIT_CONSOLE_JAR@"
reports="${REPORTS_DIR:-$here/reports}"
mkdir -p "$reports"
console="$reports/console.txt"

cp=""
for j in "$here"/lib/*.jar "$here"/tests/*.jar; do
    [[ -f $j ]] && cp="${cp:+$cp:}$j"
done
scan=""
for j in "$here"/tests/*.jar; do
    [[ -f $j ]] && scan="${scan:+$scan:}$j"
done

# An explicit selector replaces the class-path scan.
selected=0
for a in "$@"; do
    case "$a" in
        --select*|--scan-*|--uid*|-[cmpufdori]|-[cmpufdori]=*) selected=1 ;;
    esac
done
selection=()
[[ $selected == 1 ]] || selection=(--scan-class-path "$scan")

# The tests read the flag with Boolean.getBoolean, so pass true/false, not 1/0.
case "${REQUIRE_GPU:-1}" in
    1|true|TRUE|yes|on) require_gpu=true ;;
    0|false|FALSE|no|off) require_gpu=false ;;
    *) echo "run-tests: REQUIRE_GPU must be 1 or 0, not '$REQUIRE_GPU'" >&2; exit 2 ;;
esac
props=(
    "-Dflashinfer4j.requireGpu=$require_gpu"
    "-Dorg.bytedeco.javacpp.cachedir=${JAVACPP_CACHE:-$here/.javacpp-cache}"
)
if [[ -n ${GOLDEN:-} ]]; then
    props+=("-Dflashinfer4j.golden=$GOLDEN")       # explicit: a wrong folder fails the golden tests
elif [[ -d $here/golden ]]; then
    props+=("-Dflashinfer4j.golden=$here/golden")  # else the tests look for golden/ above the cwd
fi
java_opts=()
[[ -n ${JAVA_OPTS:-} ]] && read -r -a java_opts <<< "$JAVA_OPTS"

color=()
[[ -t 1 && -z ${NO_COLOR:-} ]] || color=(--disable-ansi-colors)

cmd=("$here/runtime/bin/java" --enable-native-access=ALL-UNNAMED "${props[@]}" ${java_opts[@]+"${java_opts[@]}"}
     -jar "$launcher" execute --disable-banner --details=tree ${color[@]+"${color[@]}"} --fail-if-no-tests
     --class-path "$cp" ${selection[@]+"${selection[@]}"} --reports-dir "$reports" "$@")

if [[ -n ${SANITIZER:-} ]]; then
    case "$SANITIZER" in
        memcheck|racecheck|initcheck|synccheck) ;;
        *) echo "run-tests: SANITIZER must be memcheck, racecheck, initcheck or synccheck, not '$SANITIZER'" >&2; exit 2 ;;
    esac
    sanitizer="$(command -v compute-sanitizer || true)"
    [[ -n $sanitizer ]] || { [[ -x /usr/local/cuda/bin/compute-sanitizer ]] && sanitizer=/usr/local/cuda/bin/compute-sanitizer; }
    [[ -n $sanitizer ]] || { echo "run-tests: compute-sanitizer not found on PATH or in /usr/local/cuda/bin" >&2; exit 2; }
    sopts=()
    [[ -n ${SANITIZER_OPTS:-} ]] && read -r -a sopts <<< "$SANITIZER_OPTS"
    cmd=("$sanitizer" --tool "$SANITIZER" --target-processes all ${sopts[@]+"${sopts[@]}"} "${cmd[@]}")
fi

tee_opts=()
tee -p </dev/null >/dev/null 2>&1 && tee_opts=(-p)  # GNU tee: keep writing console.txt if stdout closes
"${cmd[@]}" 2>&1 | tee ${tee_opts[@]+"${tee_opts[@]}"} "$console"
rc=${PIPESTATUS[0]}

count() {  # the number in the launcher's "[ N <what> ]" summary line, 0 if absent
    local n
    n="$(sed -e 's/\x1b\[[0-9;]*m//g' "$console" | sed -n -E "s/^\[ *([0-9]+) $1 *\]\$/\1/p" | tail -n 1)"
    echo "${n:-0}"
}
passed=$(count "tests successful")
failed=$(( $(count "tests failed") + $(count "containers failed") ))
skipped=$(( $(count "tests skipped") + $(count "tests aborted") ))

if [[ -n ${SANITIZER:-} ]]; then
    errors="$(sed -n -E 's/.*ERROR SUMMARY: ([0-9]+) error.*/\1/p' "$console" | awk '{s+=$1} END {print s+0}')"
    echo "compute-sanitizer $SANITIZER: $errors error(s)"
    [[ $errors == 0 || $rc != 0 ]] || rc=1
fi
grep -q -E '^\[ *[0-9]+ tests found' <(sed -e 's/\x1b\[[0-9;]*m//g' "$console") \
    || echo "run-tests: the launcher printed no summary (exit code $rc); see $console" >&2
echo "$passed passed, $failed failed, $skipped skipped"
exit "$rc"
EOF
sed -i "s/@JUNIT_CONSOLE_JAR@/$JUNIT_CONSOLE_JAR/" "$bundle/run-tests.sh"
chmod +x "$bundle/run-tests.sh"

commit="$(git -C "$root" rev-parse -q --verify HEAD 2>/dev/null || echo "no commit")"
if [[ -n "$(git -C "$root" status --porcelain 2>/dev/null || true)" ]]; then commit="$commit (dirty)"; fi
# shellcheck disable=SC2012
{
    echo "flashinfer4j $version GPU test bundle"
    echo "arch: $arch ($(basename "${lib_native[0]}"))"
    echo "commit: $commit"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
    echo "maven args: ${mvn_args[*]-}"
    echo "runtime: $("$bundle/runtime/bin/java" -version 2>&1 | head -n 1)"
    echo "golden: $([[ -d $bundle/golden ]] && ls "$bundle/golden" | tr '\n' ' ' || echo none)"
    echo "lib:"; (cd "$bundle/lib" && ls -1 | sed 's/^/  /')
    echo "tests:"; (cd "$bundle/tests" && ls -1 | sed 's/^/  /')
} > "$bundle/bundle-info.txt"

# ---- 7. tarball -----------------------------------------------------------------------------------
tar -C "$root/target" -czf "$tarball" gpu-bundle
size_mib="$(du -sm "$bundle" | cut -f1)"
echo "gpu-bundle: $tarball ($(du -h "$tarball" | cut -f1), unpacked ${size_mib} MiB, arch $arch)"

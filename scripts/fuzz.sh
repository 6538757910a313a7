#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang-14, ASan and UBSan into
# ./build-fuzz, and runs each for SECONDS (default 60; the issue's long form
# is 600), two at a time, starting from the seed corpus in fuzz/corpus/<target>.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      # targets: json_fuzz text_fuzz http_fuzz
#
# New inputs that grow coverage go to build-fuzz/corpus/<target> (kept
# between runs); a crash leaves its input in build-fuzz/artifacts/ and makes
# the script exit 1 after every target has run. Copy an input worth keeping
# into fuzz/corpus/<target>/ to make it a seed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json_fuzz text_fuzz http_fuzz)
build=${FUZZ_BUILD_DIR:-build-fuzz}

scripts/install-deps.sh
if [ ! -f "$build/build.ninja" ]; then
  CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDRAY_SANITIZE=address,undefined -DDRAY_BUILD_FUZZ=ON -DDRAY_BUILD_TESTS=OFF -DDRAY_BUILD_BENCH=OFF
fi
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target "${targets[@]}"

mkdir -p "$build/artifacts"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1  # libFuzzer's own leak check stays on
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
run() {
  local t=$1
  mkdir -p "$build/corpus/$t"
  if "$build/fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
       -artifact_prefix="$build/artifacts/$t-" "$build/corpus/$t" "fuzz/corpus/$t" \
       > "$build/$t.log" 2>&1; then
    echo "$t: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$build/$t.log" | awk '{print $2}') runs in ${secs} s, $(grep -o 'cov: [0-9]*' "$build/$t.log" | tail -1), corpus $(ls "$build/corpus/$t" | wc -l) inputs, no crash"
  else
    echo "$t: FAILED, see $build/$t.log and $build/artifacts/" >&2
    tail -30 "$build/$t.log" >&2
    return 1
  fi
}
pids=()
names=()
for t in "${targets[@]}"; do
  run "$t" &
  pids+=($!)
  names+=("$t")
  if [ ${#pids[@]} -ge "$(nproc)" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status

#!/usr/bin/env bash
# packaging/dev.sh fuzz [SECONDS] [TARGET...]: builds the libFuzzer targets (tests/fuzz) with clang
# in ./build-fuzz and runs each for SECONDS (default 600) or 1,000,000 executions, whichever
# comes first, on a scratch copy of its seed corpus. Stops at the first crash, leak, hang over
# 1 s or memory blow-up, and copies the input that caused it into tests/fuzz/regressions/<target>/,
# where the normal test suite replays it from then on (docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-600}"
shift || true
case "$seconds" in
  '' | *[!0-9]*) echo "usage: packaging/dev.sh fuzz [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

# clang and libFuzzer only here: the gui/test commands do not need them.
LLVM=14
if ! command -v "clang++-$LLVM" >/dev/null ||
   ! ls /usr/lib/llvm-$LLVM/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz: installing clang-$LLVM and libclang-rt-$LLVM-dev (libFuzzer)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "clang-$LLVM" "libclang-rt-$LLVM-dev"
fi
# The other build dependencies are the normal ones.
bash packaging/setup-debian.sh

BUILD_DIR="${FUZZ_BUILD_DIR:-build-fuzz}"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  CC="clang-$LLVM" CXX="clang++-$LLVM" cmake -S . -B "$BUILD_DIR" -G Ninja -DCIRCUITSCOPE_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" "${launcher[@]}"
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  for src in tests/fuzz/fuzz_*.cpp; do
    t="$(basename "$src" .cpp)"
    targets+=("${t#fuzz_}")
  done
fi
cmake --build "$BUILD_DIR" -j "${JOBS:-2}" --target "${targets[@]/#/fuzz_}"

# In memory where possible: the targets rewrite their input file on every execution.
tmpbase=/dev/shm
[ -w "$tmpbase" ] || tmpbase="${TMPDIR:-/tmp}"
scratch="$(mktemp -d "$tmpbase/cs-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
export CS_FUZZ_TMPDIR="$scratch/inputs"  # libFuzzer exits without running atexit cleanup
export QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1
# LibTorch and Qt allocate once per process and keep it: only leaks per input matter, and
# libFuzzer finds those itself (-detect_leaks=1), so the exit-time report would only add noise.
export ASAN_OPTIONS="${ASAN_OPTIONS:-leak_check_at_exit=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

status=0
for t in "${targets[@]}"; do
  work="$scratch/$t"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp tests/fuzz/corpus/"$t"/* "$work/corpus/"
  log="$work/log"
  set +e
  "$BUILD_DIR/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -runs=1000000 -timeout=1 -rss_limit_mb=2048 \
    -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" >"$log" 2>&1
  rc=$?
  set -e
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  secs="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz_%-15s %9s runs  %5s s  %7s exec/s  cov %-6s ok\n' "$t" "${runs:-?}" "${secs:-?}" "${rate:-?}" "${cov:-?}"
    continue
  fi
  mkdir -p "tests/fuzz/regressions/$t"
  kept=()
  for a in "$work"/artifacts/*; do
    [ -f "$a" ] || continue
    cp "$a" "tests/fuzz/regressions/$t/"
    kept+=("tests/fuzz/regressions/$t/$(basename "$a")")
  done
  printf 'fuzz_%-15s %9s runs  FAILED (exit %d), input kept: %s\n' "$t" "${runs:-?}" "$rc" "${kept[*]:-none}"
  grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY' "$log" || true
  # Beside the build, not in regressions/: every file there is replayed as an input.
  cp "$log" "$BUILD_DIR/fuzz_$t.log"
  echo "  full report: $BUILD_DIR/fuzz_$t.log"
  status=1
  break
done
exit "$status"

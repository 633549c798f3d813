#!/usr/bin/env bash
# The README's two commands:
#   packaging/dev.sh gui    install what is missing, build (Release), open the GUI
#   packaging/dev.sh test   install what is missing, build (Release), run the whole test suite
#   packaging/dev.sh package  ... build, then make the .deb with CPack (docs/packaging.md)
#   packaging/dev.sh sanitize ... build with ASan + UBSan in ./build-asan, run the suite (docs/hardening.md)
#   packaging/dev.sh fuzz [SECONDS]  build the libFuzzer targets with clang in ./build-fuzz, run each (docs/fuzzing.md)
# Each rebuilds incrementally in ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-gui}"; shift || true
case "$mode" in
  gui | test | package | sanitize) ;;
  fuzz) exec bash packaging/fuzz.sh "$@" ;;  # its own tools (clang) and build (./build-fuzz)
  *)  # before installing or building anything
    echo "usage: packaging/dev.sh gui|test|package|sanitize|fuzz" >&2
    exit 2
    ;;
esac

bash packaging/setup-debian.sh

CONFIG=(-DCMAKE_BUILD_TYPE=Release)
if [ "$mode" = sanitize ]; then
  # Its own directory: sanitized objects must never mix with the Release ones. -g1 (line tables)
  # is all ASan's stack traces need and compiles LibTorch's headers much faster than -g.
  BUILD_DIR="${BUILD_DIR:-build-asan}"
  CONFIG=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
          -DCMAKE_CXX_COMPILER=g++ -DCIRCUITSCOPE_SANITIZE=ON)
fi
BUILD_DIR="${BUILD_DIR:-build}"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja "${CONFIG[@]}"
fi
if [ "$mode" = sanitize ] && ! grep -q '^CIRCUITSCOPE_SANITIZE:BOOL=ON$' "$BUILD_DIR/CMakeCache.txt"; then
  echo "dev.sh sanitize: $BUILD_DIR is configured without CIRCUITSCOPE_SANITIZE=ON; name a fresh BUILD_DIR" >&2
  exit 2
fi
# Two jobs: each LibTorch translation unit needs about 1 GB of compiler memory.
cmake --build "$BUILD_DIR" -j "${JOBS:-2}"

case "$mode" in
  gui)
    exec "$BUILD_DIR/app/circuitscope" "$@"
    ;;
  test)
    export QT_QPA_PLATFORM=offscreen
    cd "$BUILD_DIR"
    exec ctest --output-on-failure "$@"
    ;;
  sanitize)
    exec bash packaging/sanitize/run-tests.sh "$BUILD_DIR" "$@"
    ;;
  package)
    # CPack packs what the build above made; its last line names the .deb, printed alone at the end.
    log="$(cd "$BUILD_DIR" && cpack -G DEB "$@" | tee /dev/stderr)"
    sed -n 's/^CPack: - package: \(.*\) generated\.$/\1/p' <<<"$log"
    ;;
  *)
    echo "usage: packaging/dev.sh gui|test|package|sanitize" >&2
    exit 2
    ;;
esac

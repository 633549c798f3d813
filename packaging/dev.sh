#!/usr/bin/env bash
# The README's two commands:
#   packaging/dev.sh gui    install what is missing, build (Release), open the GUI
#   packaging/dev.sh test   install what is missing, build (Release), run the whole test suite
#   packaging/dev.sh package  ... build, then make the .deb with CPack (docs/packaging.md)
#   packaging/dev.sh fuzz [SECONDS]  build the libFuzzer targets with clang in ./build-fuzz, run each (docs/fuzzing.md)
# Each rebuilds incrementally in ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-gui}"; shift || true
case "$mode" in
  gui | test | package) ;;
  fuzz) exec bash packaging/fuzz.sh "$@" ;;  # its own tools (clang) and build (./build-fuzz)
  *)  # before installing or building anything
    echo "usage: packaging/dev.sh gui|test|package|fuzz" >&2
    exit 2
    ;;
esac

bash packaging/setup-debian.sh

BUILD_DIR="${BUILD_DIR:-build}"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
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
  package)
    # CPack packs what the build above made; its last line names the .deb, printed alone at the end.
    log="$(cd "$BUILD_DIR" && cpack -G DEB "$@" | tee /dev/stderr)"
    sed -n 's/^CPack: - package: \(.*\) generated\.$/\1/p' <<<"$log"
    ;;
  *)
    echo "usage: packaging/dev.sh gui|test|package" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# The README's two commands:
#   packaging/dev.sh gui    install what is missing, build (Release), open the GUI
#   packaging/dev.sh test   install what is missing, build (Release), run the whole test suite
# Both rebuild incrementally in ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-gui}"; shift || true

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
  *)
    echo "usage: packaging/dev.sh gui|test" >&2
    exit 2
    ;;
esac

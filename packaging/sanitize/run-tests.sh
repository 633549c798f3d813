#!/usr/bin/env bash
# The test suite of an ASan + UBSan build (packaging/dev.sh sanitize; docs/hardening.md):
#   packaging/sanitize/run-tests.sh BUILD_DIR [ctest arguments...]
# The options go in the environment, not LD_PRELOAD: our sanitized programs (tests, the CLI they
# start) read them, while the python3 reference scripts the tests start ignore them.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
BUILD="${1:?usage: packaging/sanitize/run-tests.sh BUILD_DIR [ctest arguments...]}"
shift
if ! grep -q '^CIRCUITSCOPE_SANITIZE:BOOL=ON$' "$BUILD/CMakeCache.txt" 2>/dev/null; then
  echo "sanitize: $BUILD is not a CIRCUITSCOPE_SANITIZE=ON build directory" >&2
  exit 2
fi

export QT_QPA_PLATFORM=offscreen
# A finding ends the process at once with status 23, which ctest reports as a failure; UBSan is
# compiled with -fno-sanitize-recover, so it aborts through the same path.
export ASAN_OPTIONS="halt_on_error=1:exitcode=23:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_odr_violation=2"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=23"
# lsan.supp names third-party libraries only; LSan drops a leak when any frame of its allocation
# stack lies in one of them, so every entry there says why it is needed.
export LSAN_OPTIONS="suppressions=$HERE/lsan.supp:print_suppressions=0"
# test_deb packs and installs to /usr what it builds: a sanitized .deb tests nothing users get.
export CIRCUITSCOPE_TEST_DEB=0

cd "$BUILD"
exec ctest --output-on-failure "$@"

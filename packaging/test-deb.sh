#!/usr/bin/env bash
# The .deb, installed and used as a user would (CTest's test_deb; docs/packaging.md):
#   packaging/test-deb.sh BUILD_DIR [PACKAGE.deb]
# Packs BUILD_DIR with CPack (no rebuild) unless a .deb is given, installs it with dpkg, runs the
# installed /usr/bin/circuitscope (forward and a headless export on the demo) with the source and
# build trees hidden, so only the installed demo and plug-in can be found, validates the desktop
# file, the AppStream metadata and the man page, and removes the package again, also on failure.
#
# It installs to /usr, so it runs only as root, and never on a machine where circuitscope is
# already installed or /usr/bin/circuitscope exists (it would replace, then remove, that install).
# CIRCUITSCOPE_TEST_DEB=0 skips it. Exit status 77 = skipped (CTest's SKIP_RETURN_CODE).
set -euo pipefail

SKIP=77
skip() { echo "SKIP: test-deb: $*"; exit "$SKIP"; }
fail() { echo "FAIL: test-deb: $*" >&2; exit 1; }

SRC="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:?usage: packaging/test-deb.sh BUILD_DIR [PACKAGE.deb]}" && pwd)"
DEB="${2:-}"
METAINFO=io.github.circuitscope.Circuitscope.metainfo.xml
PROMPT="Once upon a time"

[ "${CIRCUITSCOPE_TEST_DEB:-1}" != 0 ] || skip "CIRCUITSCOPE_TEST_DEB=0"
[ "$(id -u)" -eq 0 ] || skip "needs root (it installs the package to /usr)"
command -v dpkg >/dev/null && command -v dpkg-deb >/dev/null || skip "dpkg is missing"
# Two suites running at once (two build directories) take turns rather than fight over /usr.
exec 9>/tmp/circuitscope-test-deb.lock
flock 9
if dpkg-query -W -f='${Status}' circuitscope 2>/dev/null | grep -q "installed"; then
  skip "a circuitscope package is already installed; not touching it"
fi
[ ! -e /usr/bin/circuitscope ] || skip "/usr/bin/circuitscope exists; not touching it"

work="$(mktemp -d /tmp/circuitscope-test-deb.XXXXXX)"
installed=0
cleanup() {
  if [ "$installed" = 1 ]; then dpkg -P circuitscope >/dev/null || echo "test-deb: dpkg -P circuitscope failed" >&2; fi
  rm -rf "$work"
}
trap cleanup EXIT

# 1. The package.
if [ -z "$DEB" ]; then
  command -v cpack >/dev/null || skip "cpack is missing"
  [ -x "$BUILD/app/circuitscope" ] || fail "$BUILD/app/circuitscope is not built"
  cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$work/pack" >"$work/cpack.log" 2>&1 \
    || { cat "$work/cpack.log" >&2; fail "cpack failed"; }
  DEB="$(ls "$work"/pack/circuitscope_*.deb)"
fi
[ -f "$DEB" ] || fail "no package at $DEB"
echo "test-deb: $DEB ($(du -h "$DEB" | cut -f1))"

# 2. What it holds and what it asks for.
dpkg-deb -c "$DEB" | awk '{print $NF}' | sed 's|^\./|/|' >"$work/contents"
for f in /usr/bin/circuitscope /usr/libexec/circuitscope-main /usr/lib/circuitscope/libcircuitscope_spm.so \
         /usr/share/doc/circuitscope/copyright /usr/share/doc/circuitscope/changelog.gz \
         /usr/share/circuitscope/demo/model/config.json /usr/share/circuitscope/demo/model/tokenizer.model \
         /usr/share/circuitscope/demo/model-dog/model.safetensors \
         /usr/share/circuitscope/demo/saes/res-L0/cfg.json /usr/share/circuitscope/demo/saes/tc-L3/cfg.json \
         /usr/share/applications/circuitscope.desktop /usr/share/icons/hicolor/scalable/apps/circuitscope.svg \
         "/usr/share/metainfo/$METAINFO" /usr/share/man/man1/circuitscope.1.gz; do
  grep -qx "$f" "$work/contents" || fail "the package lacks $f"
done
if grep -E '/\.[^/]+/?$|model\.new' "$work/contents"; then fail "the package holds demo scratch files"; fi
depends="$(dpkg-deb -f "$DEB" Depends)"
echo "test-deb: Depends: $depends"
for p in libtorch libqt6widgets6 libqt6svg6 libsentencepiece0 libsqlite3-0 libzip4; do
  grep -q "\b$p" <<<"$depends" || fail "Depends lacks $p"
done
version="$(dpkg-deb -f "$DEB" Version)"
grep -q "<release version=\"$version\"" "$SRC/packaging/$METAINFO" \
  || fail "$METAINFO has no <release> for version $version (add one)"

# 3. Install it. dpkg checks every declared dependency is present on this machine.
installed=1
dpkg -i "$DEB" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i failed"; }
for f in /usr/bin/circuitscope /usr/libexec/circuitscope-main /usr/lib/circuitscope/libcircuitscope_spm.so; do
  if ldd "$f" | grep "not found"; then fail "$f: a library is not found"; fi
done

# 4. Run the installed binary where the build's compiled-in fall-backs (the source tree's demo,
# the build tree's plug-in) are hidden behind empty mounts, in a private mount namespace.
run_installed() {
  env -u CIRCUITSCOPE_DEMO -u CIRCUITSCOPE_SPM_PLUGIN QT_QPA_PLATFORM=offscreen "$@"
}
hidden=(unshare --mount --propagation private bash -c \
  'mount -t tmpfs none "$1/resources" && mount -t tmpfs none "$2/app" && shift 2 && exec "$@"' \
  hide "$SRC" "$BUILD")
if "${hidden[@]}" test ! -e "$SRC/resources/demo" 2>/dev/null; then
  isolate=("${hidden[@]}")
else
  echo "test-deb: note: cannot hide the source and build trees (unshare); they may serve the demo"
  isolate=()
fi

cd "$work"
run_installed "${isolate[@]}" /usr/bin/circuitscope forward --model demo --prompt "$PROMPT" --json >forward.json \
  || fail "installed circuitscope forward failed"
# The same run from the build tree (its demo is the source tree's) must give the same logits.
reference=""
if [ -x "$BUILD/app/circuitscope" ]; then
  "$BUILD/app/circuitscope" forward --model demo --prompt "$PROMPT" --json >reference.json
  reference=reference.json
fi
python3 - forward.json /usr/share/circuitscope/demo/model/config.json $reference <<'EOF' \
  || fail "forward --json from the installed binary is wrong: $(head -c 200 forward.json)"
import json, sys
out = json.load(open(sys.argv[1]))
vocab = json.load(open(sys.argv[2]))["vocab_size"]
tokens, logits = out["tokens"], out["logits"]
assert len(tokens) >= 4, f"{len(tokens)} tokens"
assert len(logits) == len(tokens) and all(len(row) == vocab for row in logits), "logits shape"
if len(sys.argv) > 3:
    ref = json.load(open(sys.argv[3]))
    assert ref["tokens"] == tokens, f"tokens {tokens} != {ref['tokens']}"
    worst = max(abs(a - b) for ra, rb in zip(logits, ref["logits"]) for a, b in zip(ra, rb))
    assert worst < 1e-4, f"logits differ from the build tree's by {worst}"
EOF
run_installed "${isolate[@]}" /usr/bin/circuitscope export --model demo --prompt "$PROMPT" \
  --view attention --out "$work/attention.svg" >export.json || fail "installed circuitscope export failed"
grep -q "<svg" attention.svg || fail "export wrote no SVG"
[ "$(grep -c "<text\|<path\|<image" attention.svg)" -gt 10 ] || fail "the exported SVG is nearly empty"

# 5. Desktop file, AppStream metadata, man page, as installed.
appstreamcli validate --no-net "/usr/share/metainfo/$METAINFO" >"$work/appstream.log" 2>&1 \
  || { cat "$work/appstream.log" >&2; fail "appstreamcli validate failed"; }
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate /usr/share/applications/circuitscope.desktop || fail "desktop-file-validate failed"
else
  echo "test-deb: note: desktop-file-validate is not installed; the desktop file is not validated"
fi
man_warnings="$(MANWIDTH=80 man --warnings -l /usr/share/man/man1/circuitscope.1.gz 2>&1 >"$work/man.txt")"
[ -z "$man_warnings" ] || fail "the man page renders with warnings: $man_warnings"
grep -q "attribute" "$work/man.txt" && grep -q "forward" "$work/man.txt" || fail "the man page renders empty"

# 6. Remove it (purge: not even dpkg's record of it stays); nothing of it may stay behind.
dpkg -P circuitscope >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -P failed"; }
installed=0
[ ! -e /usr/bin/circuitscope ] && [ ! -e /usr/share/circuitscope ] && [ ! -e /usr/lib/circuitscope ] \
  || fail "files remain after dpkg -P"
echo "test-deb: PASS"

#!/usr/bin/env bash
# Installs the Debian 12 packages Circuitscope builds, runs and tests with.
# Skips everything already present, so a second run costs a dpkg query. Names must be real
# packages, not virtual ones (dpkg-query never reports a virtual package as installed, which
# made every run call apt-get update: libqt6svg6-dev is qt6-svg-dev's old name).
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config
  qt6-base-dev qt6-base-dev-tools qt6-svg-dev libqt6opengl6-dev
  libgl-dev
  libtorch-dev
  libopenblas0-pthread
  libqcustomplot-dev
  libsqlite3-dev
  libboost-graph-dev
  nlohmann-json3-dev
  libzip-dev
  libsentencepiece-dev
  libcli11-dev
  libpcre2-dev
  python3-torch python3-numpy python3-regex python3-sentencepiece
  xauth xvfb
  dpkg-dev appstream
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's LibTorch links libblas.so.3; the reference BLAS behind that name is ~35x slower than
# OpenBLAS. Make sure the alternative points at OpenBLAS (installing it usually does this already).
if [ "$(id -u)" -eq 0 ] && command -v update-alternatives >/dev/null; then
  ob=$(update-alternatives --list libblas.so.3-x86_64-linux-gnu 2>/dev/null | grep openblas | head -n1 || true)
  if [ -n "$ob" ]; then
    update-alternatives --set libblas.so.3-x86_64-linux-gnu "$ob" >/dev/null
  fi
fi

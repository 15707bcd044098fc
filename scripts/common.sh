#!/usr/bin/env bash
# Shared set-up for demo.sh and test.sh: install what is missing (Debian 12
# packages), configure once, build incrementally. Idempotent.
set -euo pipefail

ATTNC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${ATTNC_BUILD_DIR:-$ATTNC_ROOT/build}"
LLVM_PREFIX=/usr/lib/llvm-22

attnc_install_deps() {
  local pkgs=(llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
              libfmt-dev cmake ninja-build g++ ccache libgtest-dev
              python3-numpy python3-torch)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "attnc: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

attnc_build() {
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    cmake -G Ninja -S "$ATTNC_ROOT" -B "$BUILD_DIR" \
      -DCMAKE_BUILD_TYPE=Release \
      -DMLIR_DIR="$LLVM_PREFIX/lib/cmake/mlir" \
      -DLLVM_EXTERNAL_LIT="$LLVM_PREFIX/bin/lit" \
      -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
      >/dev/null
  fi
  ninja -C "$BUILD_DIR" "$@"
}

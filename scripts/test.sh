#!/usr/bin/env bash
# attnc tests: set up, build, run every test (lit + FileCheck, gtest through
# lit). Ends with lit's summary.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
attnc_install_deps
attnc_build
"$LLVM_PREFIX/bin/lit" -sv "$BUILD_DIR/test"

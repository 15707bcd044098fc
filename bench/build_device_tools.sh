#!/usr/bin/env bash
# Links a self-contained attn-run for the GPU machine, which has no MLIR:
# the objects of this build (attn-run.cpp.o, libattnc's objects and the
# static attnc libraries) against LLVM/MLIR 22's static archives instead of
# libMLIR.so / libLLVM.so, stripped and xz-compressed (about 19 MB) into
#   devcarry/tools/attn-run.xz
#   devcarry/tools/lib/      libattnc_runtime.so (the launch library),
#                            libfmt.so.9 and libzstd.so.1 (found through the
#                            binary's $ORIGIN/lib rpath)
# On the GPU machine bench/device_attn_run.sh unpacks it and runs
# `attn-run --backend=cuda` on every softmax example (the commands of
# test/Integration/cuda/examples.test); bench/device_backward.sh runs
# `attn-run --backward --backend=cuda` (test/Integration/cuda/backward.test).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
out="$root/devcarry/tools"
L=/usr/lib/llvm-22/lib
ninja -C "$build" attn-run attnc_runtime AttncTesting > /dev/null
mkdir -p "$out/lib"
# Every MLIR and LLVM archive in one group: the linker takes only the
# objects that are referenced, --gc-sections drops the unused sections.
mapfile -t mlir_libs < <(ls "$L"/libMLIR*.a | grep -v -e MlirOptMain -e CAPI -e Python)
g++ -o "$out/attn-run" \
  "$build/tools/attn-run/CMakeFiles/attn-run.dir/attn-run.cpp.o" \
  "$build"/lib/Runtime/CMakeFiles/attnc.dir/*.o \
  "$build/lib/Testing/libAttncTesting.a" "$build/lib/libAttncTarget.a" "$build/lib/libAttncConversion.a" \
  "$build/lib/libAttncTransforms.a" "$build/lib/libAttncDialect.a" \
  "$build/lib/libAttncAbi.a" "$build/lib/libAttncTargetDesc.a" \
  "$build/lib/libattnc_runtime.so" \
  -Wl,--start-group "${mlir_libs[@]}" "$L"/libLLVM*.a -Wl,--end-group \
  /usr/lib/x86_64-linux-gnu/libfmt.so.9 /usr/lib/x86_64-linux-gnu/libzstd.so.1 \
  -lz -ldl -lpthread -static-libstdc++ -static-libgcc -fuse-ld=gold \
  -Wl,--gc-sections -Wl,-rpath,'$ORIGIN/lib' 2> "$out/link.log" ||
  { cat "$out/link.log" >&2; exit 1; }
strip "$out/attn-run"
cp -L /usr/lib/x86_64-linux-gnu/libfmt.so.9 /usr/lib/x86_64-linux-gnu/libzstd.so.1 \
  "$build/lib/libattnc_runtime.so" "$out/lib/"
# It must still run here (the CPU backend) before it travels.
"$out/attn-run" "$root/examples/causal.mlir" --nq 67 | tail -1 | grep -q '^PASS'
xz -T2 -6 -f "$out/attn-run"
du -sh "$out"

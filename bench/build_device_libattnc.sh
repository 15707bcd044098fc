#!/usr/bin/env bash
# Links a self-contained libattnc.so (the JIT compiler that Python's
# attnc.compile and attnc.flex_attention load) for the GPU machine, which has
# no MLIR: libattnc's objects and the static attnc libraries against LLVM/MLIR
# 22's static archives (as bench/build_device_tools.sh links attn-run),
# stripped and xz-compressed into
#   devcarry/tools/libattnc.so.xz
#   devcarry/tools/lib/      libattnc_runtime.so, libfmt.so.9, libzstd.so.1
#                            (found through the library's $ORIGIN rpath)
# bench/device_python_autograd.sh unpacks it into devcarry/tools/lib on the
# GPU machine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
out="$root/devcarry/tools"
L=/usr/lib/llvm-22/lib
ninja -C "$build" attnc attnc_runtime > /dev/null
mkdir -p "$out/lib"
mapfile -t mlir_libs < <(ls "$L"/libMLIR*.a | grep -v -e MlirOptMain -e CAPI -e Python)
g++ -shared -o "$out/libattnc.so" \
  "$build"/lib/Runtime/CMakeFiles/attnc.dir/*.o \
  "$build/lib/libAttncTarget.a" "$build/lib/libAttncConversion.a" \
  "$build/lib/libAttncTransforms.a" "$build/lib/libAttncDialect.a" \
  "$build/lib/libAttncAbi.a" "$build/lib/libAttncTargetDesc.a" \
  "$build/lib/libattnc_runtime.so" \
  -Wl,--start-group "${mlir_libs[@]}" "$L"/libLLVM*.a -Wl,--end-group \
  /usr/lib/x86_64-linux-gnu/libfmt.so.9 /usr/lib/x86_64-linux-gnu/libzstd.so.1 \
  -lz -ldl -lpthread -static-libstdc++ -static-libgcc -fuse-ld=gold \
  -Wl,--gc-sections -Wl,--exclude-libs,ALL -Wl,-rpath,'$ORIGIN' \
  2> "$out/link-libattnc.log" || { cat "$out/link-libattnc.log" >&2; exit 1; }
strip --strip-unneeded "$out/libattnc.so"
cp -L /usr/lib/x86_64-linux-gnu/libfmt.so.9 /usr/lib/x86_64-linux-gnu/libzstd.so.1 \
  "$build/lib/libattnc_runtime.so" "$out/lib/"
# It must load and compile here (a CPU kernel) before it travels.
cp "$out/libattnc.so" "$out/lib/libattnc.so"
ATTNC_LIB_DIR="$out/lib" PYTHONPATH="$root/python" /usr/bin/python3 -c "
import attnc, sys
k = attnc.compile(sys.argv[1], 'cpu', function='causal_backward', cache_dir='')
print('libattnc.so for the GPU machine:', attnc.version(), k.name)" "$root/examples/causal.mlir"
rm "$out/lib/libattnc.so"
xz -T2 -6 -f "$out/libattnc.so"
du -sh "$out"

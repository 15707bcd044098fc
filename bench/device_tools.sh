# Sourced by the GPU machine's scripts (bench/device_attn_run.sh,
# bench/fuzz_gpu.sh, bench/sanitize_linear.sh): sets $tools to the carried
# devcarry/tools (bench/build_device_tools.sh), unpacks its attn-run once,
# puts the toolkit's ptxas on PATH, and gives the bf16 copies of linear
# examples (gates stay f32).
tools="$root/devcarry/tools"
if [ ! -x "$tools/attn-run" ]; then
  python3 -c "import lzma, shutil, sys
with lzma.open(sys.argv[1]) as f, open(sys.argv[2], 'wb') as g:
    shutil.copyfileobj(f, g)" "$tools/attn-run.xz" "$tools/attn-run"
  chmod +x "$tools/attn-run"
fi
for d in /usr/local/cuda/bin /usr/local/cuda-13.0/bin; do
  [ -x "$d/ptxas" ] && export PATH="$PATH:$d" && break
done

# linear_bf16 NAME DIR: examples/NAME.mlir in bf16 as DIR/NAME.mlir.
linear_bf16() {
  sed -e 's/?x4x?x64xf32>/?x4x?x64xbf16>/g' \
      -e 's/%g: tensor<?x4x?x64xbf16>/%g: tensor<?x4x?x64xf32>/' \
      -e 's/decay(%g : tensor<?x4x?x64xbf16>)/decay(%g : tensor<?x4x?x64xf32>)/' \
      "$root/examples/$1.mlir" > "$2/$1.mlir"
}

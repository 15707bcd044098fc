# Sourced by the GPU machine's scripts (bench/device_attn_run.sh,
# bench/fuzz_gpu.sh, bench/sanitize_linear.sh, bench/device_python_autograd.sh):
# sets $tools to the carried devcarry/tools (bench/build_device_tools.sh,
# bench/build_device_libattnc.sh), unpacks its attn-run and libattnc.so once,
# puts the toolkit's ptxas on PATH, and gives the bf16 copies of linear
# examples (gates stay f32).
tools="$root/devcarry/tools"
# unxz_once SRC.xz DST: unpacks SRC.xz to DST unless DST exists.
unxz_once() {
  [ -e "$2" ] && return 0
  python3 -c "import lzma, shutil, sys
with lzma.open(sys.argv[1]) as f, open(sys.argv[2], 'wb') as g:
    shutil.copyfileobj(f, g)" "$1" "$2"
  chmod +x "$2"
}
unxz_once "$tools/attn-run.xz" "$tools/attn-run"
# libattnc.so for Python's attnc.compile (bench/build_device_libattnc.sh).
if [ -e "$tools/libattnc.so.xz" ]; then
  unxz_once "$tools/libattnc.so.xz" "$tools/lib/libattnc.so"
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

# check ARGS...: runs `attn-run ARGS`, prints its last line (with the
# arguments when $show_args is set) and appends it to $log; counts PASS
# lines in $pass and the others in $fail. $work is elided from the line.
pass=0; fail=0
check() {
  local line
  line=$("$tools/attn-run" "$@" 2>&1 | tail -1)
  [ -n "${show_args:-}" ] && line="$line $*"
  echo "${line//$work\//}" | tee -a "$log"
  case "$line" in PASS*) pass=$((pass + 1)) ;; *) fail=$((fail + 1)) ;; esac
}

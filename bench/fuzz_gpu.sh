#!/usr/bin/env bash
# On the GPU machine: attn-run --backend=cuda (the self-contained build of
# bench/build_device_tools.sh, carried in devcarry/tools) on every line of
# DIR/runs.txt (bench/fuzz_masks.py, bench/fuzz_linear_sizes.py); one line
# per run, then a summary. Each spec is compiled once (a disk cache under
# $TMPDIR).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir=$1
# shellcheck source=device_tools.sh
. "$root/bench/device_tools.sh"
export ATTNC_CACHE_DIR=$(mktemp -d)
pass=0 fail=0
while read -r spec rest; do
  # shellcheck disable=SC2086
  out=$(timeout 120 "$tools/attn-run" "$dir/$spec" --backend=cuda $rest 2>&1)
  rc=$?
  last=$(echo "$out" | tail -1)
  if [ $rc -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "$out" | tail -3; fi
  echo "$spec $rest :: $last"
done < "$dir/runs.txt"
echo "attn-run --backend=cuda: $pass passed, $fail failed"
[ $fail -eq 0 ]

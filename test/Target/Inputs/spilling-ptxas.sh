#!/bin/sh
# A ptxas that reports spills for wgmma kernels (the test of attn-aot's
# fallback to the mma.sync kernel): runs $REAL_PTXAS, then adds a spill line
# ($SPILL_BYTES bytes, 96 unless set) when the input PTX (the last argument)
# holds wgmma instructions.
"$REAL_PTXAS" "$@"
rc=$?
for a in "$@"; do last=$a; done
if grep -q "wgmma.mma_async" "$last"; then
  n=${SPILL_BYTES:-96}
  echo "    $n bytes stack frame, $n bytes spill stores, $n bytes spill loads"
fi
exit $rc

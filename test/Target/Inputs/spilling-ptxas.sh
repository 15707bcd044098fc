#!/bin/sh
# A ptxas that reports spills for wgmma kernels (the test of attn-aot's
# fallback to the mma.sync kernel): runs $REAL_PTXAS, then adds a spill line
# when the input PTX (the last argument) holds wgmma instructions.
"$REAL_PTXAS" "$@"
rc=$?
for a in "$@"; do last=$a; done
if grep -q "wgmma.mma_async" "$last"; then
  echo "    8 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads"
fi
exit $rc

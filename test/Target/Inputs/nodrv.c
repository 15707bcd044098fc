/* Calls a generated launcher: without a driver (or CUDA context) the call
 * must return an error code, not crash; on a driver, a misaligned q is
 * refused with a message and a good call succeeds. Host memory stands in for
 * device memory (the stand-in driver of test/Unit/FakeCuda reads nothing). */
#include "causal.h"
#include <stdio.h>
#include <stdlib.h>

enum { B = 1, H = 4, N = 16, D = 64 };

int main(void) {
  static unsigned short q[B * H * N * D + 8], k[B * H * N * D],
      v[B * H * N * D], o[B * H * N * D];
  const int64_t sb = H * N * D, sh = N * D, sn = D, n = B * H * N * D;
  attnc_result r = attnc_causal_launch(
      0, (attnc_deviceptr)(q + 1), n, (attnc_deviceptr)k, n,
      (attnc_deviceptr)v, n, (attnc_deviceptr)o, n, B, N, N, sb, sh, sn, sb,
      sh, sn, sb, sh, sn, sb, sh, sn);
  if (r == ATTNC_ERROR_LAUNCH)
    printf("launch returned an error (%d): %s\n", r, attnc_causal_error());
  else
    printf("launch returned %s (%d)\n", r ? "an error" : "success", r);
  if (r == ATTNC_ERROR_NO_DRIVER)
    return 0;
  r = attnc_causal_launch(0, (attnc_deviceptr)q, n, (attnc_deviceptr)k, n,
                          (attnc_deviceptr)v, n, (attnc_deviceptr)o, n, B, N,
                          N, sb, sh, sn, sb, sh, sn, sb, sh, sn, sb, sh, sn);
  printf("good launch returned %s (%d)\n", r ? "an error" : "success", r);
  return r != 0;
}

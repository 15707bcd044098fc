/* Links an attn-aot launcher (driver API only) into a C program and runs it:
 * q = k = 1, v = 1 (bf16), so every output element must be exactly 1.
 * build: gcc launcher_smoke.c DIR/causal_launcher.c -IDIR -I$CUDA/include -lcuda (the launcher itself needs neither) */
#include "causal.h"
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(x)                                                               \
  do {                                                                         \
    CUresult r_ = (x);                                                         \
    if (r_ != CUDA_SUCCESS) {                                                  \
      const char *s_ = 0;                                                      \
      cuGetErrorString(r_, &s_);                                               \
      fprintf(stderr, "%s failed: %s\n", #x, s_ ? s_ : "?");                   \
      return 1;                                                                \
    }                                                                          \
  } while (0)

int main(void) {
  const int64_t B = 2, H = 16, N = 1000, D = 128;
  const int64_t n = B * H * N * D;
  CUdevice dev;
  CUcontext ctx;
  CUdeviceptr q, k, v, o;
  CHECK(cuInit(0));
  CHECK(cuDeviceGet(&dev, 0));
  CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CHECK(cuCtxSetCurrent(ctx));
  CHECK(cuMemAlloc(&q, n * 2));
  CHECK(cuMemAlloc(&k, n * 2));
  CHECK(cuMemAlloc(&v, n * 2));
  CHECK(cuMemAlloc(&o, n * 2));
  CHECK(cuMemsetD16(q, 0x3f80, n)); /* bf16 1.0 */
  CHECK(cuMemsetD16(k, 0x3f80, n));
  CHECK(cuMemsetD16(v, 0x3f80, n));
  CHECK(cuMemsetD16(o, 0x7fc0, n)); /* NaN poison */
  CHECK(attnc_causal_launch(0, q, n, k, n, v, n, o, n, B, N, N, H * N * D,
                            N * D, D, H * N * D, N * D, D, H * N * D, N * D, D,
                            H * N * D, N * D, D));
  CHECK(cuCtxSynchronize());
  unsigned short *h = malloc(n * 2);
  CHECK(cuMemcpyDtoH(h, o, n * 2));
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i)
    bad += h[i] != 0x3f80;
  printf("launcher_smoke: %lld of %lld outputs wrong\n", (long long)bad,
         (long long)n);
  return bad != 0;
}

/* Runs the causal kernel that attnc_add_kernels built from causal_bf16.mlir
 * and checks it against a float reference computed here. Prints PASS or
 * FAIL; without a CUDA driver or GPU it says so and exits 0.
 *
 * Like the generated launcher, this program needs neither the CUDA headers
 * nor -lcuda: it loads the few driver functions it uses with dlopen. */
#include "causal.h" /* generated: attnc_causal_launch */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, H = 8, N = 200, D = 64 }; /* tensors [B, H, N, D], contiguous */
#define COUNT ((int64_t)B * H * N * D)
#define BYTES ((size_t)COUNT * sizeof(uint16_t)) /* bf16 */

/* CUDA driver API entry points, declared by hand. cuda.h maps cuMemAlloc
 * and cuMemcpy* to their 64-bit "_v2" symbols: load those. */
static struct {
  attnc_result (*Init)(unsigned);
  attnc_result (*DeviceGet)(int *, int);
  attnc_result (*DevicePrimaryCtxRetain)(void **, int);
  attnc_result (*CtxSetCurrent)(void *);
  attnc_result (*MemAlloc)(attnc_deviceptr *, size_t);
  attnc_result (*MemcpyHtoD)(attnc_deviceptr, const void *, size_t);
  attnc_result (*MemcpyDtoH)(void *, attnc_deviceptr, size_t);
  attnc_result (*CtxSynchronize)(void);
} cu;

static int load_driver(void) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW);
  if (!lib)
    return 0;
  *(void **)&cu.Init = dlsym(lib, "cuInit");
  *(void **)&cu.DeviceGet = dlsym(lib, "cuDeviceGet");
  *(void **)&cu.DevicePrimaryCtxRetain = dlsym(lib, "cuDevicePrimaryCtxRetain");
  *(void **)&cu.CtxSetCurrent = dlsym(lib, "cuCtxSetCurrent");
  *(void **)&cu.MemAlloc = dlsym(lib, "cuMemAlloc_v2");
  *(void **)&cu.MemcpyHtoD = dlsym(lib, "cuMemcpyHtoD_v2");
  *(void **)&cu.MemcpyDtoH = dlsym(lib, "cuMemcpyDtoH_v2");
  *(void **)&cu.CtxSynchronize = dlsym(lib, "cuCtxSynchronize");
  return cu.Init && cu.DeviceGet && cu.DevicePrimaryCtxRetain &&
         cu.CtxSetCurrent && cu.MemAlloc && cu.MemcpyHtoD && cu.MemcpyDtoH &&
         cu.CtxSynchronize;
}

static void check(const char *what, attnc_result r) {
  if (r == ATTNC_SUCCESS)
    return;
  if (r == ATTNC_ERROR_NO_DRIVER) { /* = CUDA_ERROR_NO_DEVICE as well */
    printf("SKIP: no CUDA driver or GPU (%s returned ATTNC_ERROR_NO_DRIVER)\n",
           what);
    exit(0);
  }
  printf("FAIL: %s returned CUDA error %d%s\n", what, r,
         r == 209 ? " (no kernel for this GPU: set CONSUMER_ARCH)" : "");
  exit(1);
}

static uint16_t to_bf16(float f) { /* round to nearest even */
  uint32_t u;
  memcpy(&u, &f, 4);
  return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

static float from_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

int main(void) {
  uint16_t *host[4]; /* q, k, v, o */
  attnc_deviceptr dev[4] = {0, 0, 0, 0};
  const int64_t sb = (int64_t)H * N * D, sh = (int64_t)N * D, sn = D;
  for (int t = 0; t < 4; ++t) {
    host[t] = malloc(BYTES);
    for (int64_t i = 0; i < COUNT; ++i)
      host[t][i] = to_bf16(2.0f * rand() / (float)RAND_MAX - 1.0f);
  }

  /* A CUDA context and the inputs on the GPU. Without a driver the pointers
   * stay 0 and the launcher itself returns ATTNC_ERROR_NO_DRIVER. */
  if (load_driver()) {
    int device;
    void *ctx;
    check("cuInit", cu.Init(0));
    check("cuDeviceGet", cu.DeviceGet(&device, 0));
    check("cuDevicePrimaryCtxRetain", cu.DevicePrimaryCtxRetain(&ctx, device));
    check("cuCtxSetCurrent", cu.CtxSetCurrent(ctx));
    for (int t = 0; t < 4; ++t)
      check("cuMemAlloc", cu.MemAlloc(&dev[t], BYTES));
    for (int t = 0; t < 3; ++t)
      check("cuMemcpyHtoD", cu.MemcpyHtoD(dev[t], host[t], BYTES));
  }

  /* o = softmax(q k^T / sqrt(D), causal) v on the default stream: each
   * tensor is a pointer, its element count, and its b, h, n strides. */
  check("attnc_causal_launch",
        attnc_causal_launch(0, dev[0], COUNT, dev[1], COUNT, dev[2], COUNT,
                            dev[3], COUNT, B, N, N, sb, sh, sn, sb, sh, sn, sb,
                            sh, sn, sb, sh, sn));
  check("cuCtxSynchronize", cu.CtxSynchronize());
  check("cuMemcpyDtoH", cu.MemcpyDtoH(host[3], dev[3], BYTES));

  /* The float reference and the relative error |o - ref| / |ref|. */
  double err = 0, norm = 0;
  for (int64_t bh = 0; bh < (int64_t)B * H; ++bh) {
    const uint16_t *q = host[0] + bh * sh, *k = host[1] + bh * sh,
                   *v = host[2] + bh * sh, *o = host[3] + bh * sh;
    for (int i = 0; i < N; ++i) {
      float s[N], max = -INFINITY, sum = 0;
      for (int j = 0; j <= i; ++j) {
        s[j] = 0;
        for (int d = 0; d < D; ++d)
          s[j] += from_bf16(q[i * D + d]) * from_bf16(k[j * D + d]);
        s[j] /= sqrtf(D);
        max = fmaxf(max, s[j]);
      }
      for (int j = 0; j <= i; ++j)
        sum += s[j] = expf(s[j] - max);
      for (int d = 0; d < D; ++d) {
        float ref = 0;
        for (int j = 0; j <= i; ++j)
          ref += s[j] / sum * from_bf16(v[j * D + d]);
        double diff = from_bf16(o[i * D + d]) - ref;
        err += diff * diff;
        norm += (double)ref * ref;
      }
    }
  }
  double rel = sqrt(err / norm);
  int ok = rel < 2e-2; /* false for NaN too */
  printf("%s: causal attention B=%d H=%d N=%d D=%d (bf16) on the GPU, "
         "relative error %.2e (limit 2e-2)\n",
         ok ? "PASS" : "FAIL", B, H, N, D, rel);
  return !ok;
}

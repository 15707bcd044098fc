//===- TensorMapCache.cpp - TMA descriptors, encoded once per view --------===//
//
// Part of attnc.
//
//===----------------------------------------------------------------------===//

#include "TensorMapCache.h"
#include "CudaDriver.h"

using namespace attnc;
using namespace attnc::rt;

bool TensorMapCache::Key::operator==(const Key &o) const {
  return data == o.data && shape == o.shape && strides == o.strides &&
         boxRows == o.boxRows && dtype == o.dtype;
}

llvm::Expected<TensorMapCache::Map>
TensorMapCache::get(const TensorRef &t, int64_t boxRows, llvm::StringRef what) {
  auto st = stridesOf(t);
  Key key;
  key.data = t.data;
  for (unsigned i = 0; i < 4; ++i) {
    key.shape[i] = t.shape[i];
    key.strides[i] = st[i];
  }
  key.boxRows = boxRows;
  key.dtype = t.dtype;
  std::lock_guard<std::mutex> lock(mu);
  for (const Entry &e : entries)
    if (e.valid && e.key == key)
      return e.map;
  const cuda::Driver &drv = llvm::cantFail(cuda::driver());
  if (!drv.cuTensorMapEncodeTiled)
    return makeError(what + ": the CUDA driver has no cuTensorMapEncodeTiled "
                            "(sm_90a kernels need a CUDA 12 driver)");
  Entry &slot = entries[next];
  next = (next + 1) % kEntries;
  slot.valid = false;
  // Dims innermost first: D, N, H, B; strides in bytes of N, H, B.
  uint64_t dims[4] = {uint64_t(t.shape[3]), uint64_t(t.shape[2]),
                      uint64_t(t.shape[1]), uint64_t(t.shape[0])};
  uint64_t strides[3] = {uint64_t(st[2]) * 2, uint64_t(st[1]) * 2,
                         uint64_t(st[0]) * 2};
  unsigned box[4] = {64, unsigned(boxRows), 1, 1};
  unsigned ones[4] = {1, 1, 1, 1};
  // CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 (9) / FLOAT16 (6); interleave none,
  // swizzle 128B (3), L2 promotion none, zero fill.
  int dtype = t.dtype == DType::BF16 ? 9 : 6;
  if (llvm::Error e = cuda::check(
          drv.cuTensorMapEncodeTiled(slot.map.data(), dtype, 4, t.data, dims,
                                     strides, box, ones, 0, 3, 0, 0),
          (what + ": cuTensorMapEncodeTiled").str()))
    return std::move(e);
  slot.key = key;
  slot.valid = true;
  return slot.map;
}

//===- TensorMapCache.h - TMA descriptors, encoded once per view -*- C++
//-*-===//
//
// Part of attnc. Private to the launch library (lib/Launch).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LAUNCH_TENSORMAPCACHE_H
#define ATTNC_LAUNCH_TENSORMAPCACHE_H

#include "attnc/Abi/TensorChecks.h"

#include <array>
#include <mutex>

namespace attnc::rt {

/// A CUtensorMap (128 bytes) over a [B, H, N, D] 16-bit tensor with boxes of
/// 64 columns x `boxRows` rows, 128-byte swizzle and zero fill, as the wgmma
/// kernels read q, k and v. Encoding one costs about a microsecond of driver
/// time; a training or decoding loop passes the same few views again and
/// again, so the last few encodings are kept (keyed by pointer, shape,
/// strides, dtype and box) and reused.
class TensorMapCache {
public:
  using Map = std::array<uint64_t, 16>;
  /// The map of `t` (shape and strides as the launch checked them); an
  /// error naming `what` when the driver refuses it.
  llvm::Expected<Map> get(const TensorRef &t, int64_t boxRows,
                          llvm::StringRef what);

private:
  struct Key {
    const void *data = nullptr;
    std::array<int64_t, 4> shape{}, strides{};
    int64_t boxRows = 0;
    DType dtype = DType::F32;
    bool operator==(const Key &o) const;
  };
  struct Entry {
    Key key;
    alignas(64) Map map{};
    bool valid = false;
  };
  static constexpr size_t kEntries = 8;
  std::mutex mu;
  std::array<Entry, kEntries> entries;
  size_t next = 0;
};

} // namespace attnc::rt

#endif // ATTNC_LAUNCH_TENSORMAPCACHE_H

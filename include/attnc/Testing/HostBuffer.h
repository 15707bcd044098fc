//===- HostBuffer.h - host tensors for running specs in tests ----*- C++
//-*-===//
//
// Part of attnc. Host memory for a spec function's arguments and results as
// attn-run and the tests pass them to compiled kernels (memref descriptors
// over zero-filled heap storage). An allocation the system refuses, or a
// size past 64-bit byte counts, is an llvm::Error naming the size, never
// an abort.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_TESTING_HOSTBUFFER_H
#define ATTNC_TESTING_HOSTBUFFER_H

#include "attnc/attnc.h"

#include "mlir/IR/Types.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace attnc::testing {

/// Zero-filled heap memory whose allocation failure is reported instead of
/// ending the process (std::vector throws std::bad_alloc, which aborts a
/// build without exceptions). calloc refuses a size the system cannot back
/// without touching any memory.
template <typename T> class HeapArray {
public:
  /// Allocates `n` zeroed elements; false when the system refuses.
  bool allocate(size_t n) {
    ptr.reset(static_cast<T *>(std::calloc(n ? n : 1, sizeof(T))));
    count = ptr ? n : 0;
    return ptr != nullptr;
  }
  T *data() const { return ptr.get(); }
  size_t size() const { return count; }
  T &operator[](size_t i) const { return ptr.get()[i]; }
  T *begin() const { return ptr.get(); }
  T *end() const { return ptr.get() + count; }

private:
  struct Free {
    void operator()(T *p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> ptr;
  size_t count = 0;
};

/// "1125899906842624 bytes (1.0 PiB)".
std::string describeBytes(uint64_t bytes);
/// "2x4x300x64".
std::string shapeString(llvm::ArrayRef<int64_t> shape);
/// `count` elements of `elemBytes` plus `slack` bytes, or nullopt past int64.
std::optional<int64_t> checkedBytes(std::optional<int64_t> count,
                                    int64_t elemBytes, int64_t slack = 0);
/// The number of elements of `shape`, or nullopt past int64.
std::optional<int64_t> checkedNumel(llvm::ArrayRef<int64_t> shape);
/// The error for an allocation of `bytes` (nullopt: its size overflowed
/// int64) for `what`, whose size is `how` ("2x4x300x64 f32 elements").
llvm::Error allocationError(std::optional<int64_t> bytes,
                            const llvm::Twine &what, llvm::StringRef how);
/// The error for `count` elements of `elemBytes` bytes for `what`.
llvm::Error arrayAllocationError(int64_t count, int64_t elemBytes,
                                 const llvm::Twine &what);

/// Allocates `count` zeroed elements of `a` for `what`, or says why not.
template <typename T>
llvm::Error allocateArray(HeapArray<T> &a, int64_t count,
                          const llvm::Twine &what) {
  if (!checkedBytes(count, sizeof(T)) || count < 0 ||
      !a.allocate(size_t(count)))
    return arrayAllocationError(count, sizeof(T), what);
  return llvm::Error::success();
}

/// The element type of a spec tensor (index as i64); nullopt for others.
std::optional<DType> dtypeOf(mlir::Type t);

/// A tensor in host memory with its memref descriptor.
struct HostBuffer {
  DType kind = DType::F32;
  std::vector<int64_t> shape;
  HeapArray<uint8_t> bytes;
  int64_t count = 0;         // elements
  std::vector<int64_t> desc; // allocated, aligned, offset, sizes, strides
  void *descPtr = nullptr;

  int64_t numel() const { return count; }
  /// Allocates zeroed storage for `shape` (and `slack` bytes more) for
  /// `what`; an error names the size that overflowed or was refused.
  llvm::Error allocate(const llvm::Twine &what, int64_t slack = 0);
  /// Fills `desc` (a row-major memref descriptor) and points `descPtr` at
  /// it.
  void makeDesc();
};

/// Element `i` of a float buffer as a double, and stores (rounded to the
/// buffer's type). Integer buffers: stores truncate to the element width.
double loadFloat(DType kind, const uint8_t *data, int64_t i);
double getFloat(const HostBuffer &b, int64_t i);
void setFloat(HostBuffer &b, int64_t i, double v);
void setInt(HostBuffer &b, int64_t i, int64_t v);

} // namespace attnc::testing

#endif // ATTNC_TESTING_HOSTBUFFER_H

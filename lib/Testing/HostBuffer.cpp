//===- HostBuffer.cpp - host tensors for running specs in tests -----------===//
//
// Part of attnc.
//
//===----------------------------------------------------------------------===//

#include "attnc/Testing/HostBuffer.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/CheckedArithmetic.h"
#include "llvm/Support/raw_ostream.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <iterator>

using namespace attnc;
using namespace attnc::testing;

std::string attnc::testing::describeBytes(uint64_t bytes) {
  static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  std::string s = fmt::format("{} bytes", bytes);
  if (bytes < 1024)
    return s;
  double v = double(bytes) / 1024;
  unsigned u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  return s + fmt::format(" ({:.1f} {})", v, units[u]);
}

std::string attnc::testing::shapeString(llvm::ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  llvm::interleave(shape, os, "x");
  return s;
}

std::optional<int64_t>
attnc::testing::checkedBytes(std::optional<int64_t> count, int64_t elemBytes,
                             int64_t slack) {
  if (!count)
    return std::nullopt;
  std::optional<int64_t> b = llvm::checkedMul(*count, elemBytes);
  return b ? llvm::checkedAdd(*b, slack) : std::nullopt;
}

std::optional<int64_t>
attnc::testing::checkedNumel(llvm::ArrayRef<int64_t> shape) {
  std::optional<int64_t> n = 1;
  for (int64_t d : shape)
    if (n)
      n = llvm::checkedMul(*n, d);
  return n;
}

llvm::Error attnc::testing::allocationError(std::optional<int64_t> bytes,
                                            const llvm::Twine &what,
                                            llvm::StringRef how) {
  if (!bytes)
    return llvm::createStringError("cannot allocate " + what + ": its size (" +
                                   how + ") overflows 64-bit byte counts");
  return llvm::createStringError("cannot allocate " +
                                 describeBytes(uint64_t(*bytes)) + " for " +
                                 what + " (" + how + ")");
}

llvm::Error attnc::testing::arrayAllocationError(int64_t count,
                                                 int64_t elemBytes,
                                                 const llvm::Twine &what) {
  return allocationError(
      checkedBytes(count, elemBytes), what,
      fmt::format("{} elements of {} bytes", count, elemBytes));
}

std::optional<DType> attnc::testing::dtypeOf(mlir::Type t) {
  if (t.isF32())
    return DType::F32;
  if (t.isF16())
    return DType::F16;
  if (t.isBF16())
    return DType::BF16;
  if (t.isInteger(1))
    return DType::I1;
  if (t.isInteger(8))
    return DType::I8;
  if (t.isInteger(32))
    return DType::I32;
  if (t.isInteger(64) || t.isIndex())
    return DType::I64;
  return std::nullopt;
}

llvm::Error HostBuffer::allocate(const llvm::Twine &what, int64_t slack) {
  std::optional<int64_t> n = checkedNumel(shape);
  std::optional<int64_t> b = checkedBytes(n, dtypeSize(kind), slack);
  if (!b || !bytes.allocate(size_t(*b)))
    return allocationError(b, what,
                           fmt::format("{} {} elements", shapeString(shape),
                                       dtypeName(kind).str()));
  count = *n;
  return llvm::Error::success();
}

void HostBuffer::makeDesc() {
  desc.assign(3 + 2 * shape.size(), 0);
  auto ptr = reinterpret_cast<int64_t>(bytes.data());
  desc[0] = desc[1] = ptr;
  int64_t stride = 1;
  for (int i = int(shape.size()) - 1; i >= 0; --i) {
    desc[3 + i] = shape[i];
    desc[3 + shape.size() + i] = stride;
    stride *= shape[i];
  }
  descPtr = desc.data();
}

namespace {
uint16_t toBF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if (std::isnan(f))
    return 0x7fc0;
  x += 0x7fff + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}
float fromBF16(uint16_t h) {
  uint32_t x = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}
} // namespace

void attnc::testing::setFloat(HostBuffer &b, int64_t i, double v) {
  switch (b.kind) {
  case DType::F32:
    reinterpret_cast<float *>(b.bytes.data())[i] = float(v);
    break;
  case DType::F16:
    reinterpret_cast<_Float16 *>(b.bytes.data())[i] = _Float16(float(v));
    break;
  case DType::BF16:
    reinterpret_cast<uint16_t *>(b.bytes.data())[i] = toBF16(float(v));
    break;
  default:
    break;
  }
}

double attnc::testing::loadFloat(DType kind, const uint8_t *data, int64_t i) {
  switch (kind) {
  case DType::F32:
    return reinterpret_cast<const float *>(data)[i];
  case DType::F16:
    return float(reinterpret_cast<const _Float16 *>(data)[i]);
  case DType::BF16:
    return fromBF16(reinterpret_cast<const uint16_t *>(data)[i]);
  default:
    return 0;
  }
}

double attnc::testing::getFloat(const HostBuffer &b, int64_t i) {
  return loadFloat(b.kind, b.bytes.data(), i);
}

void attnc::testing::setInt(HostBuffer &b, int64_t i, int64_t v) {
  switch (b.kind) {
  case DType::I1:
  case DType::I8:
    reinterpret_cast<int8_t *>(b.bytes.data())[i] = int8_t(v);
    break;
  case DType::I32:
    reinterpret_cast<int32_t *>(b.bytes.data())[i] = int32_t(v);
    break;
  case DType::I64:
    reinterpret_cast<int64_t *>(b.bytes.data())[i] = v;
    break;
  default:
    break;
  }
}

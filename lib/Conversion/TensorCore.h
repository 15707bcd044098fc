//===- TensorCore.h - tensor-core building blocks of the GPU kernels ------===//
//
// Part of attnc. Internal to lib/Conversion: the instructions every GPU
// kernel builder (attention mma.sync and wgmma, linear attention) emits the
// same way:
//  - mma.sync m16n8k16 fragments: ldmatrix, register operands, f32 packing,
//    the MMA itself (PTX register layouts, see AttnToGPU.cpp);
//  - cp.async staging of [B, H, N, D] row tiles into shared memory;
//  - warp shuffles and the approximate exp2/lg2/tanh of inline PTX;
//  - wgmma (sm_90a): shared-memory matrix descriptors as a bit-field struct,
//    the shared-memory (SS) MMA, and the register-A MMA behind one helper.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_LIB_CONVERSION_TENSORCORE_H
#define ATTNC_LIB_CONVERSION_TENSORCORE_H

#include "attnc/Transforms/LoweringUtils.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include "llvm/ADT/STLFunctionalExtras.h"

#include <array>
#include <string>

namespace mlir::attn::detail {

//===----------------------------------------------------------------------===//
// Scalar PTX helpers and shuffles
//===----------------------------------------------------------------------===//

/// `<instr> $0, $1;` on one f32 (inline PTX), e.g. "ex2.approx.ftz.f32".
Value ptxUnaryF32(ImplicitLocOpBuilder &b, StringRef instr, Value x);
/// 2^x with the hardware approximation (all GPU kernels' exponentials).
Value ex2Approx(ImplicitLocOpBuilder &b, Value x);
/// log2(x) with the hardware approximation.
Value lg2Approx(ImplicitLocOpBuilder &b, Value x);

/// `x` from lane (lane ^ mask) of the warp.
Value shuffleXor(ImplicitLocOpBuilder &b, Value x, int32_t mask);
/// `x` through a warp shuffle of `mode` (up, idx, ...) by the i32 `offset`.
Value shuffle(ImplicitLocOpBuilder &b, Value x, Value offset,
              gpu::ShuffleMode mode);

//===----------------------------------------------------------------------===//
// Global tensors and cp.async staging
//===----------------------------------------------------------------------===//

/// A [B, H, N, D] tensor in global memory (a 1-D memref) with its element
/// strides over b, h and n; columns are contiguous.
struct StridedTensor {
  Value mem;
  std::array<Value, 3> strides;
  /// An element offset added to every address (null: none): a packed
  /// sequence's first row times the row stride.
  Value base;
  /// The element offset of (batch, head, row, col).
  Value offset(Emitter &e, Value batch, Value head, Value row, Value col) const;
};

/// Rows [firstRow, firstRow + rows) of a strided tensor staged by cp.async
/// into shared memory: each of `threads` threads (thread `tid`) copies
/// 16-byte chunks; rows at or past `rowLimit` are zero-filled (read from row
/// 0 with a source size of 0).
struct CpAsyncTile {
  int64_t rows = 0;
  /// Columns copied per row, starting at `colOffset` (null: 0).
  int64_t width = 0;
  Value colOffset;
  int64_t threads = 0;
  /// The thread index and an index 0 of the caller's.
  Value tid, zero;
  Value firstRow, rowLimit;
  /// The shared-memory destination [(buffer,) row, col] and, if set, the
  /// leading buffer index.
  Value smem, buffer;
  /// The storage row of a tile row (a token order), if set.
  llvm::function_ref<Value(Value)> storageRow;
  /// The (head, storage row) of a tile row, if set (rows of several heads:
  /// the split-KV kernel's packed query rows); overrides `head`.
  llvm::function_ref<std::pair<Value, Value>(Value)> rowSource;
  /// The (page, row in the page) of a storage row, if set (paged KV: the
  /// source is a page pool and `batch` is not used).
  llvm::function_ref<std::pair<Value, Value>(Value)> pageRow;
  /// Clamp the shared-memory row of the chunks past the tile to 0 (set by
  /// the attention kernels; without a partial last round of threads the
  /// select is always true, but dropping it changes their PTX).
  bool clampTailRows = false;
};

/// Issues the cp.async copies of `tile` (no commit).
void stageTile(ImplicitLocOpBuilder &b, const StridedTensor &src, Value batch,
               Value head, const CpAsyncTile &tile);
/// Closes the cp.async copies issued so far into one group.
void commitGroup(ImplicitLocOpBuilder &b);
/// Waits until at most `n` cp.async groups are in flight.
void waitGroups(ImplicitLocOpBuilder &b, int32_t n);

//===----------------------------------------------------------------------===//
// mma.sync m16n8k16
//===----------------------------------------------------------------------===//

/// Four f32 accumulator values of one m16n8 C fragment.
using Frag = std::array<Value, 4>;

/// The mma.sync m16n8k16 instructions of one input type (bf16 or f16), f32
/// accumulators.
class MmaSync {
public:
  MmaSync(ImplicitLocOpBuilder &b, Type elem)
      : b(b), elem(elem), bf16(elem.isBF16()) {}

  /// ldmatrix (x`count`, optionally transposed) at `idx` of `smem`: the
  /// vector<count x 2 x elem> of this lane's registers.
  Value ldmatrix(Value smem, ValueRange idx, int64_t count, bool trans);
  /// The `count` registers of an ldmatrix result as vector<2 x elem>.
  SmallVector<Value> registers(Value frag, int64_t count);
  /// The `count` registers of an ldmatrix result as mma operands (each
  /// extracted and converted in turn).
  SmallVector<Value> operands(Value frag, int64_t count);
  /// A vector<2 x elem> register as an mma operand (i32 for bf16).
  Value operand(Value pair);
  /// Two f32 values rounded to the element type, as one mma operand.
  Value pack(Value x, Value y);
  /// c + a b for A (4 operands, row) and B (2 operands, col).
  Frag mma(ArrayRef<Value> a, ArrayRef<Value> bOps, const Frag &c);

  Type elementType() const { return elem; }
  bool isBF16() const { return bf16; }

private:
  ImplicitLocOpBuilder &b;
  Type elem;
  bool bf16;
};

//===----------------------------------------------------------------------===//
// wgmma (sm_90a)
//===----------------------------------------------------------------------===//

/// A wgmma shared-memory matrix descriptor (PTX ISA, "Matrix Descriptor
/// Format"): 14-bit fields of 16-byte units. `encode()` gives the 64-bit
/// value without the start address, which `build` adds at run time.
struct WgmmaDescriptor {
  enum Swizzle : uint64_t { None = 0, B128 = 1, B64 = 2, B32 = 3 };
  uint64_t startAddress : 14;      // bits 0-13: (address & 0x3FFFF) >> 4
  uint64_t leadingByteOffset : 14; // bits 16-29: LBO >> 4
  uint64_t strideByteOffset : 14;  // bits 32-45: SBO >> 4
  uint64_t baseOffset : 3;         // bits 49-51
  uint64_t swizzle : 2;            // bits 62-63

  /// 128-byte swizzle with `lboBytes` between the 64-column atoms of a
  /// K-major operand (or the 8-row groups of an MN-major one) and SBO =
  /// 1024 bytes (8 rows of 128 bytes).
  static WgmmaDescriptor swizzled128(int64_t lboBytes);
  uint64_t encode() const;
  /// The descriptor of the shared-memory byte address `addr` (i64). Shared
  /// addresses are below 2^18, so the descriptor of addr + off (off a
  /// multiple of 16) is this one plus off / 16.
  Value build(ImplicitLocOpBuilder &b, Value addr) const;
};

/// `x` + `off` (x unchanged when off is 0), in x's integer type.
Value addConstant(ImplicitLocOpBuilder &b, Value x, int64_t off);

/// wgmma.fence before the first wgmma of a group reading registers.
void wgmmaFence(ImplicitLocOpBuilder &b);
/// Commits the issued wgmma and waits for all of them.
void wgmmaCommitAndWait(ImplicitLocOpBuilder &b);

/// acc (+)= A B, m64 x `n` x k16, A and B from shared memory through
/// descriptors (A K-major, B K-major: row x col); `accumulate` false zeroes
/// the accumulator first.
Value wgmmaShared(ImplicitLocOpBuilder &b, Type accTy, Value acc, Value descA,
                  Value descB, int64_t n, Type elem, bool accumulate);

/// The register-A wgmma m64 x `n` x k16 (f32 accumulators): A from four
/// registers of this thread, B (MN-major, transposed) from shared memory
/// through a descriptor. No MLIR 22 op takes A from registers: this is
/// inline PTX, built once per shape.
class RegisterAWgmma {
public:
  RegisterAWgmma(int64_t n, Type elem);
  /// acc + A B: `a` the four operand registers, `acc` the n / 2 f32
  /// accumulator values of this thread; returns the `accTy` struct.
  Value emit(ImplicitLocOpBuilder &b, Type accTy, ArrayRef<Value> a,
             Value descB, ArrayRef<Value> acc) const;

private:
  std::string asmText, constraints;
};

} // namespace mlir::attn::detail

#endif // ATTNC_LIB_CONVERSION_TENSORCORE_H

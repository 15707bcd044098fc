//===- TensorCore.cpp - tensor-core building blocks of the GPU kernels ----===//
//
// Part of attnc. See TensorCore.h.
//
//===----------------------------------------------------------------------===//

#include "TensorCore.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::attn;
using namespace mlir::attn::detail;
using arith::CmpIPredicate;

Value mlir::attn::detail::ptxUnaryF32(ImplicitLocOpBuilder &b, StringRef instr,
                                      Value x) {
  // llvm.inline_asm with the register constraint written out, not
  // nvvm.inline_ptx: convert-nvvm-to-llvm gives an operand defined by an
  // llvm.mlir.constant the immediate constraint 'n', which LLVM accepts for
  // integers only ("constraint 'n' expects an integer constant expression",
  // fatal in-process). Operands fold to constants where a region is
  // evaluated at a fixed score (the block map's s = 0, say). "f" takes
  // constants too (LLVM moves them into a register), and for any other
  // operand this is the op nvvm.inline_ptx became: the same PTX.
  assert(x.getType().isF32() && "ptxUnaryF32 takes an f32");
  auto op = LLVM::InlineAsmOp::create(
      b, TypeRange{b.getF32Type()}, ValueRange{x}, (instr + " $0, $1;").str(),
      "=f,f", /*has_side_effects=*/true, /*is_align_stack=*/false,
      LLVM::tailcallkind::TailCallKind::None,
      LLVM::AsmDialectAttr::get(b.getContext(), LLVM::AsmDialect::AD_ATT),
      ArrayAttr());
  return op.getResult(0);
}

Value mlir::attn::detail::ex2Approx(ImplicitLocOpBuilder &b, Value x) {
  return ptxUnaryF32(b, "ex2.approx.ftz.f32", x);
}

Value mlir::attn::detail::lg2Approx(ImplicitLocOpBuilder &b, Value x) {
  return ptxUnaryF32(b, "lg2.approx.ftz.f32", x);
}

Value mlir::attn::detail::shuffleXor(ImplicitLocOpBuilder &b, Value x,
                                     int32_t mask) {
  return gpu::ShuffleOp::create(b, x, mask, 32, gpu::ShuffleMode::XOR)
      .getShuffleResult();
}

Value mlir::attn::detail::shuffle(ImplicitLocOpBuilder &b, Value x,
                                  Value offset, gpu::ShuffleMode mode) {
  Value width = arith::ConstantIntOp::create(b, b.getI32Type(), 32);
  return gpu::ShuffleOp::create(b, x, offset, width, mode).getShuffleResult();
}

Value StridedTensor::offset(Emitter &e, Value batch, Value head, Value row,
                            Value col) const {
  Value off =
      e.addi(e.addi(e.muli(batch, strides[0]), e.muli(head, strides[1])),
             e.addi(e.muli(row, strides[2]), col));
  return base ? e.addi(base, off) : off;
}

void mlir::attn::detail::stageTile(ImplicitLocOpBuilder &b,
                                   const StridedTensor &src, Value batch,
                                   Value head, const CpAsyncTile &tile) {
  Emitter e(b);
  auto smemTy = cast<MemRefType>(tile.smem.getType());
  int64_t vec = 16 / (smemTy.getElementType().getIntOrFloatBitWidth() / 8);
  int64_t perRow = tile.width / vec;
  int64_t total = tile.rows * perRow;
  Value zero = tile.zero;
  Type tokenTy = nvgpu::DeviceAsyncTokenType::get(b.getContext());
  for (int64_t it = 0; it * tile.threads < total; ++it) {
    Value c = e.addi(tile.tid, e.idx(it * tile.threads));
    Value row = e.divi(c, e.idx(perRow));
    Value col =
        e.muli(b.createOrFold<arith::RemUIOp>(c, e.idx(perRow)), e.idx(vec));
    Value grow = e.addi(tile.firstRow, row);
    Value valid = e.cmpi(CmpIPredicate::ult, grow, tile.rowLimit);
    if (total % tile.threads != 0)
      valid = b.createOrFold<arith::AndIOp>(
          valid, e.cmpi(CmpIPredicate::ult, c, e.idx(total)));
    Value safeRow = e.select(valid, grow, zero);
    if (tile.storageRow)
      safeRow = tile.storageRow(safeRow);
    Value srcElems = e.select(valid, e.idx(vec), zero);
    Value smemRow = row;
    if (tile.clampTailRows)
      smemRow =
          e.select(e.cmpi(CmpIPredicate::ult, c, e.idx(total)), row, zero);
    Value srcHead = head;
    if (tile.rowSource)
      std::tie(srcHead, safeRow) = tile.rowSource(safeRow);
    Value srcBatch = batch;
    if (tile.pageRow)
      std::tie(srcBatch, safeRow) = tile.pageRow(safeRow);
    Value srcCol = tile.colOffset ? e.addi(tile.colOffset, col) : col;
    Value off = src.offset(e, srcBatch, srcHead, safeRow, srcCol);
    SmallVector<Value> dst;
    if (tile.buffer)
      dst.push_back(tile.buffer);
    dst.append({smemRow, col});
    // The async token is not used: groups are committed and waited for with
    // cp.async.commit_group / wait_group, which need no SSA dependence.
    (void)nvgpu::DeviceAsyncCopyOp::create(
        b, tokenTy, tile.smem, dst, src.mem, ValueRange{off},
        b.getIndexAttr(vec), srcElems, UnitAttr::get(b.getContext()));
  }
}

void mlir::attn::detail::commitGroup(ImplicitLocOpBuilder &b) {
  NVVM::CpAsyncCommitGroupOp::create(b);
}

void mlir::attn::detail::waitGroups(ImplicitLocOpBuilder &b, int32_t n) {
  NVVM::CpAsyncWaitGroupOp::create(b, b.getI32IntegerAttr(n));
}

Value MmaSync::ldmatrix(Value smem, ValueRange idx, int64_t count, bool trans) {
  return nvgpu::LdMatrixOp::create(b, VectorType::get({count, 2}, elem), smem,
                                   idx, b.getBoolAttr(trans),
                                   b.getI32IntegerAttr(count));
}

SmallVector<Value> MmaSync::registers(Value frag, int64_t count) {
  SmallVector<Value> out;
  for (int64_t i = 0; i < count; ++i)
    out.push_back(vector::ExtractOp::create(b, frag, ArrayRef<int64_t>{i}));
  return out;
}

SmallVector<Value> MmaSync::operands(Value frag, int64_t count) {
  SmallVector<Value> out;
  for (int64_t i = 0; i < count; ++i)
    out.push_back(
        operand(vector::ExtractOp::create(b, frag, ArrayRef<int64_t>{i})));
  return out;
}

Value MmaSync::operand(Value pair) {
  if (!bf16)
    return pair;
  return LLVM::BitcastOp::create(b, b.getI32Type(), pair);
}

Value MmaSync::pack(Value x, Value y) {
  Value xe = arith::TruncFOp::create(b, elem, x);
  Value ye = arith::TruncFOp::create(b, elem, y);
  Value pair = vector::FromElementsOp::create(b, VectorType::get({2}, elem),
                                              ValueRange{xe, ye});
  return operand(pair);
}

Frag MmaSync::mma(ArrayRef<Value> a, ArrayRef<Value> bOps, const Frag &c) {
  Type f32 = b.getF32Type();
  auto resTy =
      LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
  NVVM::MMATypes t = bf16 ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
  auto mmaOp =
      NVVM::MmaOp::create(b, resTy, a, bOps, ValueRange{c[0], c[1], c[2], c[3]},
                          ArrayRef<int64_t>{16, 8, 16}, std::nullopt,
                          std::nullopt, std::array<NVVM::MMATypes, 2>{t, t},
                          std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                                         NVVM::MMALayout::col});
  Frag out;
  for (int64_t i = 0; i < 4; ++i)
    out[i] = LLVM::ExtractValueOp::create(b, mmaOp.getResult(),
                                          ArrayRef<int64_t>{i});
  return out;
}

WgmmaDescriptor WgmmaDescriptor::swizzled128(int64_t lboBytes) {
  WgmmaDescriptor d{};
  d.leadingByteOffset = uint64_t(lboBytes) >> 4;
  d.strideByteOffset = 1024 >> 4;
  d.swizzle = B128;
  return d;
}

uint64_t WgmmaDescriptor::encode() const {
  return uint64_t(startAddress) | uint64_t(leadingByteOffset) << 16 |
         uint64_t(strideByteOffset) << 32 | uint64_t(baseOffset) << 49 |
         uint64_t(swizzle) << 62;
}

Value WgmmaDescriptor::build(ImplicitLocOpBuilder &b, Value addr) const {
  Type i64 = b.getI64Type();
  auto c = [&](int64_t x) {
    return arith::ConstantIntOp::create(b, i64, x).getResult();
  };
  Value m = arith::AndIOp::create(b, addr, c(0x3FFFF));
  Value start = arith::ShRUIOp::create(b, m, c(4));
  return arith::OrIOp::create(b, start, c(int64_t(encode())));
}

Value mlir::attn::detail::addConstant(ImplicitLocOpBuilder &b, Value x,
                                      int64_t off) {
  if (!off)
    return x;
  return arith::AddIOp::create(
      b, x, arith::ConstantIntOp::create(b, x.getType(), off));
}

void mlir::attn::detail::wgmmaFence(ImplicitLocOpBuilder &b) {
  NVVM::WgmmaFenceAlignedOp::create(b);
}

void mlir::attn::detail::wgmmaCommitAndWait(ImplicitLocOpBuilder &b) {
  NVVM::WgmmaGroupSyncAlignedOp::create(b);
  NVVM::WgmmaWaitGroupSyncOp::create(b, uint64_t(0));
}

Value mlir::attn::detail::wgmmaShared(ImplicitLocOpBuilder &b, Type accTy,
                                      Value acc, Value descA, Value descB,
                                      int64_t n, Type elem, bool accumulate) {
  NVVM::WGMMATypes t =
      elem.isBF16() ? NVVM::WGMMATypes::bf16 : NVVM::WGMMATypes::f16;
  return NVVM::WgmmaMmaAsyncOp::create(
      b, accTy, acc, descA, descB,
      NVVM::MMAShapeAttr::get(b.getContext(), 64, int(n), 16), t, t,
      NVVM::WGMMATypes::f32,
      accumulate ? NVVM::WGMMAScaleOut::one : NVVM::WGMMAScaleOut::zero,
      NVVM::WGMMAScaleIn::one, NVVM::WGMMAScaleIn::one, NVVM::MMALayout::row,
      NVVM::MMALayout::col, NVVM::MMAIntOverflowAttr());
}

RegisterAWgmma::RegisterAWgmma(int64_t n, Type elem) {
  // Outputs $0..$(n/2 - 1), A the next four, then the B descriptor;
  // accumulators tied to the outputs; scale-d 1, scale-a 1, scale-b 1,
  // trans-b 1 (B is MN-major).
  int64_t nAcc = n / 2;
  std::string ty = elem.isBF16() ? "bf16" : "f16";
  asmText = "wgmma.mma_async.sync.aligned.m64n" + std::to_string(n) +
            "k16.f32." + ty + "." + ty + " {";
  for (int64_t i = 0; i < nAcc; ++i) {
    asmText += (i ? ", $" : "$") + std::to_string(i);
    constraints += "=f,";
  }
  asmText += "}, {";
  for (int64_t i = 0; i < 4; ++i)
    asmText += (i ? ", $" : "$") + std::to_string(nAcc + i);
  asmText += "}, $" + std::to_string(nAcc + 4) + ", 1, 1, 1, 1;";
  constraints += "r,r,r,r,l";
  for (int64_t i = 0; i < nAcc; ++i)
    constraints += "," + std::to_string(i);
}

Value RegisterAWgmma::emit(ImplicitLocOpBuilder &b, Type accTy,
                           ArrayRef<Value> a, Value descB,
                           ArrayRef<Value> acc) const {
  SmallVector<Value> ops(a);
  ops.push_back(descB);
  ops.append(acc.begin(), acc.end());
  auto asmOp = LLVM::InlineAsmOp::create(
      b, TypeRange{accTy}, ops, asmText, constraints,
      /*has_side_effects=*/true, /*is_align_stack=*/false,
      LLVM::tailcallkind::TailCallKind::None,
      LLVM::AsmDialectAttr::get(b.getContext(), LLVM::AsmDialect::AD_ATT),
      ArrayAttr());
  return asmOp.getResult(0);
}

//===- FinalizeSm90.cpp - attn-finalize-sm90 ------------------------------===//
//
// Part of attnc. What MLIR 22's GPU-to-NVVM conversion cannot express for
// the sm_90a path, applied to the LLVM-dialect kernels it produces (see the
// pass description and docs/notes/sm90a-plan.md, sections 1.2 and 1.5),
// and, on every target, a check of the inline PTX that LLVM would reject
// with a fatal error.
//
//===----------------------------------------------------------------------===//

#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "attn-finalize-sm90"

namespace mlir::attn {
#define GEN_PASS_DEF_ATTNFINALIZESM90
#include "Attn/AttnPasses.h.inc"
} // namespace mlir::attn

using namespace mlir;

/// A type convert-nvvm-to-llvm's PTX builder has a register class for
/// (others reach an llvm_unreachable there).
static bool isPtxRegisterType(Type t) {
  auto scalar = [](Type s) {
    return s.isInteger(1) || s.isInteger(16) || s.isInteger(32) ||
           s.isInteger(64) || s.isF32() || s.isF64() ||
           isa<LLVM::LLVMPointerType>(s);
  };
  if (auto st = dyn_cast<LLVM::LLVMStructType>(t))
    return llvm::all_of(st.getBody(), scalar);
  return scalar(t);
}

/// Whether `v` is an llvm.mlir.constant of an integer: what an immediate
/// ('n', 'i') inline-asm operand must be when it reaches LLVM.
static bool isIntegerConstant(Value v) {
  auto c = v.getDefiningOp<LLVM::ConstantOp>();
  return c && isa<IntegerAttr>(c.getValue());
}

/// Inline PTX that LLVM's code generator would reject with a fatal error
/// (it reports inline-asm constraint errors through the LLVMContext, whose
/// default handler exits the process): convert-nvvm-to-llvm gives every
/// operand defined by an llvm.mlir.constant the constraint 'n', which LLVM
/// accepts for integer constants only ("constraint 'n' expects an integer
/// constant expression"); an llvm.inline_asm immediate operand that is not
/// an integer constant fails the same way. Reported here, on the op, with
/// the spec's location.
static LogicalResult checkInlinePtx(gpu::GPUModuleOp module) {
  bool failed = false;
  module.walk([&](Operation *op) {
    if (auto ptx = dyn_cast<NVVM::InlinePtxOp>(op)) {
      for (Value v : llvm::concat<Value>(op->getOperands(), op->getResults()))
        if (!isPtxRegisterType(v.getType())) {
          op->emitOpError() << "inline PTX `" << ptx.getPtxCode()
                            << "`: no PTX register type for " << v.getType();
          failed = true;
          return;
        }
    }
    if (auto iface = dyn_cast<NVVM::BasicPtxBuilderInterface>(op);
        iface && !iface.hasIntrinsic()) {
      for (auto [k, v] : llvm::enumerate(op->getOperands())) {
        auto c = v.getDefiningOp<LLVM::ConstantOp>();
        if (!c || isIntegerConstant(v))
          continue;
        InFlightDiagnostic d = op->emitOpError();
        if (auto ptx = dyn_cast<NVVM::InlinePtxOp>(op))
          d << "inline PTX `" << ptx.getPtxCode() << "`: ";
        d << "operand " << k << " is a constant " << v.getType()
          << ", which the PTX builder passes as an immediate ('n'), an "
             "integer only (write an llvm.inline_asm with a register "
             "constraint instead)";
        failed = true;
        return;
      }
    }
    if (auto asmOp = dyn_cast<LLVM::InlineAsmOp>(op)) {
      // Input constraints follow the outputs ("=..."), one per operand;
      // clobbers ("~{...}") take none.
      SmallVector<StringRef> inputs;
      SmallVector<StringRef> parts;
      asmOp.getConstraints().split(parts, ',');
      for (StringRef c : parts)
        if (!c.starts_with("=") && !c.starts_with("~"))
          inputs.push_back(c);
      if (inputs.size() != asmOp.getOperands().size())
        return;
      for (auto [k, c] : llvm::enumerate(inputs)) {
        if ((c != "n" && c != "i") || isIntegerConstant(asmOp.getOperand(k)))
          continue;
        op->emitOpError() << "`" << asmOp.getAsmString() << "`: operand " << k
                          << " has the immediate constraint '" << c
                          << "' but is not an integer constant";
        failed = true;
        return;
      }
    }
  });
  return success(!failed);
}

namespace {
struct AttnFinalizeSm90Pass
    : public mlir::attn::impl::AttnFinalizeSm90Base<AttnFinalizeSm90Pass> {
  void runOnOperation() override {
    gpu::GPUModuleOp module = getOperation();
    if (failed(checkInlinePtx(module)))
      return signalPassFailure();
    MLIRContext *ctx = &getContext();
    Builder b(ctx);
    bool failedAny = false;
    module.walk([&](LLVM::LLVMFuncOp func) {
      auto tma = func->getAttrOfType<DenseI32ArrayAttr>("attn.tma_args");
      if (!tma)
        return;
      if (!func->hasAttr(NVVM::NVVMDialect::getKernelFuncAttrName())) {
        func.emitError() << "attn.tma_args on a function that is not a kernel";
        failedAny = true;
        return;
      }
      Type map = LLVM::LLVMArrayType::get(b.getI64Type(), 16);
      for (int32_t i : tma.asArrayRef()) {
        if (i < 0 || unsigned(i) >= func.getNumArguments() ||
            !isa<LLVM::LLVMPointerType>(func.getArgumentTypes()[i])) {
          func.emitError() << "attn.tma_args names argument " << i
                           << ", which is not a pointer argument";
          failedAny = true;
          return;
        }
        func.setArgAttr(i, LLVM::LLVMDialect::getByValAttrName(),
                        TypeAttr::get(map));
        func.setArgAttr(i, LLVM::LLVMDialect::getAlignAttrName(),
                        b.getI64IntegerAttr(64));
        func.setArgAttr(i, NVVM::NVVMDialect::getGridConstantAttrName(),
                        b.getUnitAttr());
      }
      func->removeAttr("attn.tma_args");
      LLVM_DEBUG(llvm::dbgs() << func.getName() << ": " << tma.size()
                              << " TMA maps passed by value\n");
    });
    if (failedAny)
      return signalPassFailure();
    module.walk([&](LLVM::GlobalOp global) {
      if (!global.getSymName().starts_with("__dynamic_shmem__"))
        return;
      global.setLinkage(LLVM::Linkage::External);
      global.setAlignment(1024);
    });
  }
};
} // namespace

//===- FinalizeSm90.cpp - attn-finalize-sm90 ------------------------------===//
//
// Part of attnc. What MLIR 22's GPU-to-NVVM conversion cannot express for
// the sm_90a path, applied to the LLVM-dialect kernels it produces (see the
// pass description and docs/notes/sm90a-plan.md, sections 1.2 and 1.5).
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

namespace {
struct AttnFinalizeSm90Pass
    : public mlir::attn::impl::AttnFinalizeSm90Base<AttnFinalizeSm90Pass> {
  void runOnOperation() override {
    gpu::GPUModuleOp module = getOperation();
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

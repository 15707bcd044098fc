//===- TargetDesc.cpp - the targets and what each offers ------------------===//
//
// Part of attnc. See TargetDesc.h. No pass code and no MLIR: the dialect,
// the passes, the code generators and the tools all read the targets here.
//
//===----------------------------------------------------------------------===//

#include "attnc/Target/TargetDesc.h"

#include "llvm/ADT/STLExtras.h"

using namespace mlir::attn;

static const TargetDesc kTargets[] = {
    // CPU: the tiles of one core should stay in (a share of) its L2.
    {Target::Cpu, "cpu", false, 256 * 1024, 0, 1, 1, false, false, false, ""},
    // GPUs: the budget of the mma.sync kernel (static shared memory, one K/V
    // stage), which sm_90a also uses for the shapes the wgmma kernel does
    // not take. The wgmma kernel's tiles and dynamic shared memory (up to
    // 160 KB of the H100's 227) are the sm90* helpers of TargetDesc.h.
    {Target::Sm80, "sm_80", true, kStaticSharedBytes, 160, 32, 1, true, false,
     false, "sm_80"},
    {Target::Sm90a, "sm_90a", true, kStaticSharedBytes, 160, 32, 1, true, true,
     true, "sm_90a"},
};

const TargetDesc &mlir::attn::getTargetDesc(Target target) {
  return kTargets[static_cast<int>(target)];
}

const TargetDesc *mlir::attn::lookupTarget(llvm::StringRef name) {
  for (const TargetDesc &t : kTargets)
    if (t.name == name)
      return &t;
  return nullptr;
}

std::optional<Target> mlir::attn::parseTarget(llvm::StringRef name) {
  if (const TargetDesc *t = lookupTarget(name))
    return t->kind;
  return std::nullopt;
}

llvm::StringRef mlir::attn::stringifyTarget(Target target) {
  return getTargetDesc(target).name;
}

llvm::StringRef mlir::attn::knownTargetNames(bool gpuOnly) {
  return gpuOnly ? "sm_80 or sm_90a" : "cpu, sm_80 or sm_90a";
}

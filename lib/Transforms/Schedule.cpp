//===- Schedule.cpp - attn-select-schedule --------------------------------===//
//
// Part of attnc. The FlashAttention IO analysis: K and V are streamed once
// per q tile, so HBM traffic is about N*D*(1 + 2*Nq/block_q); the largest
// tile that fits on chip wins. Ties go to the larger block_q.
//
//===----------------------------------------------------------------------===//

#include "attnc/Target/TargetDesc.h"
#include "attnc/Transforms/Passes.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/Debug.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::attn {
#define GEN_PASS_DEF_ATTNSELECTSCHEDULE
#include "Attn/AttnPasses.h.inc"
} // namespace mlir::attn

#define DEBUG_TYPE "attn-select-schedule"

using namespace mlir;
using namespace mlir::attn;

namespace {
struct Choice {
  int64_t bq = 0, bkv = 0, warps = 1, smem = 0, regs = 0;
};

/// On-chip bytes and accumulator registers of a (bq, bkv) tile.
Choice measure(const TargetDesc &t, int64_t bq, int64_t bkv, int64_t d,
               int64_t dv, int64_t elemBytes) {
  Choice c;
  c.bq = bq;
  c.bkv = bkv;
  if (t.isGpu) {
    // The mma.sync kernel gives each warp 16 query rows and keeps Q, S and
    // O in registers; shared memory holds K and V tiles.
    c.warps = std::max<int64_t>(1, bq / 16);
    c.smem = mmaSyncSharedBytes(bkv, d, dv, elemBytes, t.stages);
    c.regs = 16 * (dv + bkv) / t.warpSize + 16 * d / (2 * t.warpSize);
  } else {
    // Everything in f32: Q tile, K and V tiles, scores, accumulator.
    c.smem = (bq * d + bkv * (d + dv) + bq * bkv + bq * dv) * 4;
  }
  return c;
}

bool fits(const TargetDesc &t, const Choice &c) {
  return c.smem <= t.onChipBytes && (!t.isGpu || c.regs <= t.accRegsPerThread);
}

/// Whether some free tile of the mma.sync kernel fits head dims d and dv.
bool anyTileFits(const TargetDesc &t, int64_t d, int64_t dv,
                 int64_t elemBytes) {
  // The smallest tile needs the least of both resources.
  return fits(t, measure(t, 16, 16, d, dv, elemBytes));
}

/// Explains, in the user's terms, why no GPU tile fits head dims d and dv
/// (forced block sizes, 0 when free): which resource the kernel runs out of,
/// by how much, and which head dims the target supports.
void emitNoGpuTile(AttentionOp op, const TargetDesc &t, int64_t d, int64_t dv,
                   int64_t elemBytes, int64_t forcedQ, int64_t forcedKv) {
  Choice c = measure(t, forcedQ ? forcedQ : 16, forcedKv ? forcedKv : 16, d, dv,
                     elemBytes);
  bool forced = forcedQ || forcedKv;
  InFlightDiagnostic diag = op.emitOpError() << "head dims " << d << "/" << dv;
  if (forced)
    diag << " do not fit " << t.name << " with the forced block-q=" << forcedQ
         << " block-kv=" << forcedKv << " (0: free)";
  else
    diag << " are not supported on " << t.name << " yet";
  diag << ": the kernel for them (mma.sync, 16 query rows per warp";
  if (t.wgmma)
    diag << "; the wgmma kernel takes head dims 64 and 128 only";
  diag << ")";
  bool regs = c.regs > t.accRegsPerThread, smem = c.smem > t.onChipBytes;
  std::string elemName;
  llvm::raw_string_ostream(elemName) << op.getQ().getType().getElementType();
  if (regs)
    diag << " keeps each warp's output rows (16 x " << dv
         << " f32) and query rows (16 x " << d << " " << elemName
         << ") in registers, which takes " << c.regs << " registers per thread "
         << (forced ? "with" : "even with") << " " << c.bkv
         << "-key tiles, against the " << t.accRegsPerThread
         << " of 255 it can spare";
  if (regs && smem)
    diag << ", and";
  if (smem)
    diag << " keeps a " << c.bkv << "-row tile of K and of V in shared memory, "
         << c.smem << " bytes against the " << t.onChipBytes
         << " (48 KB) of static shared memory a block may use";
  // The head dims that fit (d = dv), from the same measure.
  int64_t largest = 0;
  for (int64_t x = 16; x <= 256; x += 16)
    if (anyTileFits(t, x, x, elemBytes))
      largest = x;
  diag << "; supported: head dims that are multiples of 16 up to " << largest
       << " (d = dv; a smaller value dim leaves room for a larger d)";
  if (forced)
    diag << ", with free or smaller block sizes";
  diag << "; the CPU backend takes any head dim";
}
} // namespace

namespace {
struct AttnSelectSchedulePass
    : public mlir::attn::impl::AttnSelectScheduleBase<AttnSelectSchedulePass> {
  using AttnSelectScheduleBase::AttnSelectScheduleBase;

  void runOnOperation() override {
    const TargetDesc *t = lookupTarget(target);
    if (!t) {
      getOperation()->emitError()
          << "attn-select-schedule: unknown target '" << target
          << "' (expected " << knownTargetNames() << ")";
      return signalPassFailure();
    }
    auto bad = [](int64_t x) { return x < 0 || (x > 0 && (x & (x - 1))); };
    if (bad(blockQ) || bad(blockKv)) {
      getOperation()->emitError()
          << "attn-select-schedule: block-q and block-kv must be powers of two";
      return signalPassFailure();
    }
    WalkResult r = getOperation()->walk([&](AttentionOp op) -> WalkResult {
      if (op.getScheduleAttr()) {
        LLVM_DEBUG(llvm::dbgs() << op->getLoc() << ": keeps its schedule "
                                << op.getScheduleAttr() << "\n");
        return WalkResult::advance();
      }
      int64_t d = op.getHeadDim(), dv = op.getValueDim();
      Type elem = cast<RankedTensorType>(op.getQ().getType()).getElementType();
      int64_t elemBytes = elem.getIntOrFloatBitWidth() / 8;
      static const int64_t sizes[] = {128, 64, 32, 16};
      int64_t forcedQ = blockQ, forcedKv = blockKv;
      llvm::ArrayRef<int64_t> qs = forcedQ ? llvm::ArrayRef<int64_t>(forcedQ)
                                           : llvm::ArrayRef<int64_t>(sizes);
      llvm::ArrayRef<int64_t> kvs = forcedKv ? llvm::ArrayRef<int64_t>(forcedKv)
                                             : llvm::ArrayRef<int64_t>(sizes);
      // Measured on an H100 (bf16, d = 128): 128x64 tiles win on dense
      // attention (290 vs 275 TFLOP/s), 64x64 on causal (277 vs 244).
      bool masked = op.hasMaskRegion() || op.hasScoreRegion();
      Choice best;
      // sm_90a: the TMA + wgmma kernel has one tile shape; forcing another
      // selects the mma.sync kernel.
      int64_t bq90 = forcedQ ? forcedQ : kSm90BlockQ;
      LLVM_DEBUG(llvm::dbgs()
                 << op->getLoc() << ": target " << t->name << ", d=" << d
                 << " dv=" << dv << ", " << elemBytes << "-byte elements, "
                 << (masked ? "masked" : "dense") << ", forced block-q="
                 << forcedQ << " block-kv=" << forcedKv << " (0: free)\n");
      // Paged KV: the TMA kernel gathers pages of 8 rows or more that tile
      // 128 keys (one box per page); smaller pages are gathered row by row
      // by the mma.sync kernel's cp.async, which runs on every target.
      bool pagesFit = !op.isPaged() || sm90PageSize(op.getPageSize());
      if (t->wgmma && pagesFit && sm90Supports(elemBytes == 2, d, dv) &&
          sm90Tile(bq90, forcedKv ? forcedKv : kSm90BlockKv)) {
        LLVM_DEBUG(llvm::dbgs()
                   << "  wgmma kernel: " << bq90 << "x" << kSm90BlockKv << ", "
                   << sm90Stages(bq90) << " stages, "
                   << sm90SharedBytes(bq90, d, dv) << " B\n");
        op.setScheduleAttr(ScheduleAttr::get(
            op.getContext(), t->kind, bq90, kSm90BlockKv, bq90 / 16,
            sm90Stages(bq90), sm90SharedBytes(bq90, d, dv)));
        return WalkResult::advance();
      }
      if (forcedQ && forcedKv) {
        // Both forced: taken as given, even past the on-chip budget.
        best = measure(*t, forcedQ, forcedKv, d, dv, elemBytes);
      } else {
        for (int64_t bq : qs)
          for (int64_t bkv : kvs) {
            Choice c = measure(*t, bq, bkv, d, dv, elemBytes);
            LLVM_DEBUG(llvm::dbgs()
                       << "  candidate " << bq << "x" << bkv << ": " << c.smem
                       << " B on chip (of " << t->onChipBytes << "), " << c.regs
                       << " acc regs/thread (of " << t->accRegsPerThread << ")"
                       << (fits(*t, c) ? "" : ", does not fit") << "\n");
            if (!fits(*t, c))
              continue;
            if (t->isGpu && masked && !forcedQ && c.bq > 64)
              continue; // finer q tiles skip more of a mask's empty area
            if (c.bq * c.bkv > best.bq * best.bkv ||
                (c.bq * c.bkv == best.bq * best.bkv && c.bq > best.bq))
              best = c;
          }
      }
      // The CPU's budget is its cache: past it the smallest tiles still run
      // (slower). A GPU's shared memory and registers are hard limits.
      if (best.bq == 0 && !t->isGpu)
        best = measure(*t, qs.back(), kvs.back(), d, dv, elemBytes);
      if (best.bq == 0) {
        emitNoGpuTile(op, *t, d, dv, elemBytes, forcedQ, forcedKv);
        return WalkResult::interrupt();
      }
      op.setScheduleAttr(ScheduleAttr::get(op.getContext(), t->kind, best.bq,
                                           best.bkv, best.warps, t->stages,
                                           best.smem));
      LLVM_DEBUG(llvm::dbgs() << "  chose " << op.getScheduleAttr() << "\n");
      return WalkResult::advance();
    });
    if (r.wasInterrupted())
      return signalPassFailure();
    getOperation()->walk([&](AttentionGradOp op) {
      if (!op.getScheduleAttr())
        scheduleGrad(op, *t);
    });
    r = getOperation()->walk([&](Operation *op) -> WalkResult {
      auto lin = dyn_cast<LinearOpInterface>(op);
      if (!lin || lin.getScheduleAttr())
        return WalkResult::advance();
      return scheduleLinear(lin, *t) ? WalkResult::advance()
                                     : WalkResult::interrupt();
    });
    if (r.wasInterrupted())
      signalPassFailure();
  }

  /// The backward's tiles: on GPUs the dq kernel's q tile (block_q) and the
  /// dkdv kernel's kv tile (block_kv), 64 rows each unless forced (the
  /// kernels hold 16 rows per warp; docs/backward.md); on the CPU the tiled
  /// backward's 32 x 32.
  void scheduleGrad(AttentionGradOp op, const TargetDesc &t) {
    int64_t dflt = t.isGpu ? 64 : 32;
    int64_t bq = blockQ ? int64_t(blockQ) : dflt;
    int64_t bkv = blockKv ? int64_t(blockKv) : dflt;
    int64_t width = std::max(op.getHeadDim(), op.getValueDim());
    int64_t smem = t.isGpu ? 64 * (width + 8) * 2 * 2 : 0;
    op.setScheduleAttr(ScheduleAttr::get(op.getContext(), t.kind, bq, bkv,
                                         t.isGpu ? bq / 16 : 1, 1, smem));
    LLVM_DEBUG(llvm::dbgs() << op->getLoc() << ": backward "
                            << op.getScheduleAttr() << "\n");
  }

  /// The chunk length of the chunked linear-attention / scan lowering. Per
  /// token, the quadratic part inside a chunk costs about C * (F + Dv) / 2
  /// multiply-adds and the state update 2 * F * Dv: chunks up to
  /// C = 4 * F * Dv / (F + Dv) keep the two comparable on tensor cores (128 for
  /// F = Dv = 64 and above; flash-linear-attention uses 64). The chunk's rows
  /// of phi(q), phi(k), v and the gates plus the F x Dv state (f32) must fit
  /// the target's on-chip budget.
  bool scheduleLinear(LinearOpInterface op, const TargetDesc &t) {
    int64_t f = op.getFeatureDim();
    int64_t dv = cast<RankedTensorType>(op.getO().getType()).getDimSize(3);
    // Without matrix units (the CPU) the quadratic part costs as much per
    // multiply-add as the state update, so short chunks win (measured, 2048
    // tokens, F = Dv = 64: C = 16 takes 10 to 31 ms, C = 128 25 to 164 ms).
    int64_t limit = t.isGpu ? std::max<int64_t>(16, 4 * f * dv / (f + dv)) : 16;
    // CPU: the chunk's rows of phi(q), phi(k), v and the gates plus the
    // F x Dv state, in f32. GPU: phi(q), phi(k), v staged in 16-bit, the
    // gates in f32 (the state lives in registers).
    auto bytes = [&](int64_t c) {
      if (t.isGpu)
        return c * (2 * f + dv) * 2 + c * (f + 1) * 4;
      return (c * (3 * f + dv + 1) + f * dv + f) * 4;
    };
    int64_t chunk = 0;
    if (blockQ) {
      chunk = blockQ;
    } else {
      for (int64_t c : {128, 64, 32, 16})
        if (c <= limit && bytes(c) <= t.onChipBytes) {
          chunk = c;
          break;
        }
    }
    // The CPU's budget is its cache: past it the shortest chunk still runs
    // (the recurrent form needs no chunk at all).
    if (!chunk && !t.isGpu)
      chunk = 16;
    if (!chunk) {
      op->emitOpError() << "no chunk length fits " << t.name << " ("
                        << t.onChipBytes << " bytes on chip) for feature dim "
                        << f << " and value dim " << dv;
      return false;
    }
    op->setAttr("schedule",
                ScheduleAttr::get(op->getContext(), t.kind, chunk, chunk,
                                  t.isGpu ? 4 : 1, 1, bytes(chunk)));
    LLVM_DEBUG(llvm::dbgs()
               << op->getLoc() << ": " << op->getName() << " feature dim " << f
               << ", value dim " << dv << ": chunk " << chunk << " (limit "
               << limit << ", " << bytes(chunk) << " B on chip)\n");
    return true;
  }
};
} // namespace

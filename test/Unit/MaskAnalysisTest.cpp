//===- MaskAnalysisTest.cpp - soundness of the tile classification --------===//
//
// For several masks and many random tiles: a tile classified empty holds no
// element where the mask is definitely true, a full tile no element where it
// is definitely false (each element evaluated with a point interval), and
// the classification agrees with the expected classes of known tiles.
//
//===----------------------------------------------------------------------===//

#include "attnc/Analysis/MaskAnalysis.h"
#include "attnc/Target/Pipelines.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>
#include <random>

using namespace mlir;
using namespace mlir::attn;

namespace {

std::string spec(const std::string &maskBody) {
  return R"(
func.func @f(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
             %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
)" + maskBody +
         R"(
    } : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
})";
}

class MaskAnalysisTest : public ::testing::Test {
protected:
  MaskAnalysisTest() {
    DialectRegistry registry;
    registerAttncDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
  }

  AttentionOp parse(const std::string &body) {
    module = parseSourceString<ModuleOp>(spec(body), &ctx);
    EXPECT_TRUE(module);
    AttentionOp found;
    module->walk([&](AttentionOp op) { found = op; });
    return found;
  }

  /// 0 empty, 1 partial, 2 full.
  int classify(AttentionOp op, const MaskStructure &ms, int64_t i0, int64_t i1,
               int64_t j0, int64_t j1) {
    ConstBackend be;
    auto [t, f] = evalTileMask(be, op, ms, 0, 0, i0, i1, j0, j1);
    return !t ? 0 : !f ? 2 : 1;
  }

  void checkSound(const std::string &body, int64_t n) {
    AttentionOp op = parse(body);
    ASSERT_TRUE(op);
    MaskStructure ms = analyzeMaskStructure(op);
    std::mt19937 rng(7);
    std::uniform_int_distribution<int64_t> pos(0, n - 1), len(1, 70);
    for (int trial = 0; trial < 400; ++trial) {
      int64_t i0 = pos(rng), j0 = pos(rng);
      int64_t i1 = std::min(n - 1, i0 + len(rng) - 1);
      int64_t j1 = std::min(n - 1, j0 + len(rng) - 1);
      int cls = classify(op, ms, i0, i1, j0, j1);
      for (int64_t i = i0; i <= i1; ++i) {
        for (int64_t j = j0; j <= j1; ++j) {
          int point = classify(op, ms, i, i, j, j);
          // Empty tiles hold no visible element, full tiles no masked one.
          ASSERT_FALSE((cls == 0 && point == 2) || (cls == 2 && point == 0))
              << body << " tile i[" << i0 << "," << i1 << "] j[" << j0 << ","
              << j1 << "] class " << cls << " at " << i << "," << j;
        }
      }
    }
  }

  MLIRContext ctx;
  OwningOpRef<ModuleOp> module;
};

const char *kCausal = R"(
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1)";

const char *kWindow = R"(
      %w = arith.constant 40 : index
      %c = arith.cmpi uge, %i, %j : index
      %d = arith.subi %i, %j : index
      %n = arith.cmpi slt, %d, %w : index
      %m = arith.andi %c, %n : i1
      attn.yield %m : i1)";

const char *kDilated = R"(
      %two = arith.constant 2 : index
      %c = arith.cmpi uge, %i, %j : index
      %d = arith.subi %i, %j : index
      %r = arith.remui %d, %two : index
      %z = arith.constant 0 : index
      %e = arith.cmpi eq, %r, %z : index
      %m = arith.andi %c, %e : i1
      attn.yield %m : i1)";

const char *kNeighborhood = R"(
      %w = arith.constant 16 : index
      %two = arith.constant 2 : index
      %ri = arith.divui %i, %w : index
      %rj = arith.divui %j, %w : index
      %ci = arith.remui %i, %w : index
      %cj = arith.remui %j, %w : index
      %dr = arith.subi %ri, %rj : index
      %dc = arith.subi %ci, %cj : index
      %adr = math.absi %dr : index
      %adc = math.absi %dc : index
      %a = arith.cmpi sle, %adr, %two : index
      %b2 = arith.cmpi sle, %adc, %two : index
      %m = arith.andi %a, %b2 : i1
      attn.yield %m : i1)";

// Relies on unsigned wrap-around: i - j < 0 is a huge unsigned number.
const char *kUnsignedWrap = R"(
      %w = arith.constant 32 : index
      %d = arith.subi %i, %j : index
      %m = arith.cmpi ult, %d, %w : index
      attn.yield %m : i1)";

TEST_F(MaskAnalysisTest, CausalKnownTiles) {
  AttentionOp op = parse(kCausal);
  MaskStructure ms = analyzeMaskStructure(op);
  EXPECT_EQ(ms.kind, MaskKind::index);
  EXPECT_FALSE(ms.batch);
  EXPECT_FALSE(ms.head);
  EXPECT_EQ(classify(op, ms, 0, 63, 64, 127), 0);   // above the diagonal
  EXPECT_EQ(classify(op, ms, 64, 127, 0, 63), 2);   // below
  EXPECT_EQ(classify(op, ms, 64, 127, 64, 127), 1); // on it
}

TEST_F(MaskAnalysisTest, NeighborhoodSkipsFarTiles) {
  AttentionOp op = parse(kNeighborhood);
  MaskStructure ms = analyzeMaskStructure(op);
  EXPECT_EQ(ms.kind, MaskKind::index);
  // Rows 0..3 of the grid against rows 12..15: empty.
  EXPECT_EQ(classify(op, ms, 0, 63, 192, 255), 0);
  EXPECT_EQ(classify(op, ms, 0, 63, 0, 63), 1);
}

TEST_F(MaskAnalysisTest, UnsignedWrapIsNotFull) {
  AttentionOp op = parse(kUnsignedWrap);
  MaskStructure ms = analyzeMaskStructure(op);
  // j > i everywhere in this tile: i - j wraps, so the mask is false there;
  // a signed reading would call it full.
  EXPECT_NE(classify(op, ms, 0, 15, 100, 115), 2);
  EXPECT_EQ(classify(op, ms, 100, 115, 90, 99), 2);
}

TEST_F(MaskAnalysisTest, SoundCausal) { checkSound(kCausal, 300); }
TEST_F(MaskAnalysisTest, SoundWindow) { checkSound(kWindow, 300); }
TEST_F(MaskAnalysisTest, SoundDilated) { checkSound(kDilated, 300); }
TEST_F(MaskAnalysisTest, SoundNeighborhood) { checkSound(kNeighborhood, 256); }
TEST_F(MaskAnalysisTest, SoundUnsignedWrap) { checkSound(kUnsignedWrap, 300); }

TEST_F(MaskAnalysisTest, DataDependentMask) {
  AttentionOp op;
  {
    std::string s = R"(
func.func @f(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
             %v: tensor<?x2x?x16xf32>, %docs: tensor<?xi32>) -> tensor<?x2x?x16xf32> {
  %o = attn.attention %q, %k, %v captures(%docs : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %di = tensor.extract %docs[%i] : tensor<?xi32>
      %dj = tensor.extract %docs[%j] : tensor<?xi32>
      %same = arith.cmpi eq, %di, %dj : i32
      %c = arith.cmpi uge, %i, %j : index
      %m = arith.andi %same, %c : i1
      attn.yield %m : i1
    } : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
})";
    module = parseSourceString<ModuleOp>(s, &ctx);
    ASSERT_TRUE(module);
    module->walk([&](AttentionOp a) { op = a; });
  }
  MaskStructure ms = analyzeMaskStructure(op);
  EXPECT_EQ(ms.kind, MaskKind::data);
  // The causal part still proves upper tiles empty; lower ones need data.
  EXPECT_EQ(classify(op, ms, 0, 63, 64, 127), 0);
  EXPECT_EQ(classify(op, ms, 64, 127, 0, 63), 1);
}

} // namespace

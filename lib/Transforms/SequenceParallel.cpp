//===- SequenceParallel.cpp - attn-sequence-parallel: LASP-2 phases -------===//
//
// Part of attnc. Splits a function whose attn op is one causal
// attn.linear_attention or attn.scan into the phases of LASP-2 (sequence
// parallelism with one AllGather of states): `@f_lasp_state` (the chunk's
// state and total log-decay), `@f_lasp_combine` / `@f_lasp_combine_grad`
// (attn.combine_states over the gathered states) and `@f_lasp_output` (the
// op from the combined state). The collectives stay in the runtime, between
// these functions; attn-differentiate of `@f_lasp_output` is the backward.
//
//===----------------------------------------------------------------------===//

#include "SequenceParallel.h"
#include "attnc/Transforms/FunctionCloning.h"
#include "attnc/Transforms/LoweringUtils.h"
#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::attn {
#define GEN_PASS_DEF_ATTNSEQUENCEPARALLEL
#include "Attn/AttnPasses.h.inc"
} // namespace mlir::attn

using namespace mlir;
using namespace mlir::attn;

static const StringRef kPhases[] = {"_lasp_layout",  "_lasp_state",
                                    "_lasp_combine", "_lasp_combine_grad",
                                    "_lasp_output",  "_lasp_attention"};

/// Why `op` has no sequence-parallel form yet ("" when it has one).
static std::string unsupported(LinearOpInterface op) {
  if (op.getDirection() != Direction::causal)
    return "is bidirectional: the bidirectional LASP-2 form (states from "
           "the ranks before and after) is not implemented yet";
  if (op.getOrderAttr())
    return "scans in a token order: shard the tokens in scan order and "
           "split the spec without `order`";
  for (auto [what, v] : {std::pair<StringRef, Value>{"q", op.getQ()},
                         {"k", op.getK()},
                         {"v", op.getV()},
                         {"initial state", op.getInitialState()}})
    if (v && !isa<BlockArgument>(v))
      return ("computes its " + what +
              " in the function: the sequence-parallel phases map each "
              "gradient to an argument, so q, k, v and the initial state "
              "must be arguments")
          .str();
  return "";
}

/// The single attn op of `f` that the pass splits (a causal linear op or
/// an attn.attention) whose results only func.return uses, or null with
/// `why` set.
static Operation *splittableOp(func::FuncOp f, std::string &why) {
  SmallVector<Operation *> ops;
  f.walk([&](Operation *op) {
    if (isa<AttentionOp, AttentionGradOp, LinearAttentionOp,
            LinearAttentionGradOp, ScanOp, CombineStatesOp>(op))
      ops.push_back(op);
  });
  if (ops.size() != 1 ||
      !isa<AttentionOp, LinearAttentionOp, ScanOp>(ops.front())) {
    why = "has no single attn.attention, attn.linear_attention or attn.scan "
          "to split";
    return nullptr;
  }
  for (Operation *user : ops.front()->getUsers())
    if (!isa<func::ReturnOp>(user)) {
      why = "uses the attn op's results in other operations";
      return nullptr;
    }
  if (auto attention = dyn_cast<AttentionOp>(ops.front()))
    why = lasp::whyNotAttention(attention);
  else
    why = unsupported(cast<LinearOpInterface>(ops.front()));
  return why.empty() ? ops.front() : nullptr;
}

/// `t` ([..., Dv]) with `extra` more columns.
static RankedTensorType widenLastDim(Type t, int64_t extra) {
  auto rt = cast<RankedTensorType>(t);
  SmallVector<int64_t> shape(rt.getShape());
  shape.back() += extra;
  return RankedTensorType::get(shape, rt.getElementType());
}

/// The state type [B, H, F, Dv] f32 of `op` (Dv + 1 under normalize: the
/// normalizer's column).
static RankedTensorType stateTypeOf(LinearOpInterface op) {
  int64_t extra = op.getNormalize() ? 1 : 0;
  if (Value fin = op.getFinalState())
    return widenLastDim(fin.getType(), extra);
  auto q = cast<RankedTensorType>(op.getQ().getType());
  auto v = cast<RankedTensorType>(op.getV().getType());
  return RankedTensorType::get({q.getDimSize(0), q.getDimSize(1),
                                op.getFeatureDim(), v.getDimSize(3) + extra},
                               Float32Type::get(op.getContext()));
}

/// The chunk's total log-decay: [B, H], or [B, H, F] for per-feature gates.
static RankedTensorType decayTotalTypeOf(LinearOpInterface op) {
  auto q = cast<RankedTensorType>(op.getQ().getType());
  SmallVector<int64_t> shape = {q.getDimSize(0), q.getDimSize(1)};
  if (Value g = op.getDecay()) {
    auto gt = cast<RankedTensorType>(g.getType());
    if (gt.getRank() == 4)
      shape.push_back(gt.getDimSize(3));
  }
  return RankedTensorType::get(shape, Float32Type::get(op.getContext()));
}

/// `t` with a leading dynamic rank dimension: the gathered form.
static RankedTensorType gatheredType(RankedTensorType t) {
  SmallVector<int64_t> shape = {ShapedType::kDynamic};
  llvm::append_range(shape, t.getShape());
  return RankedTensorType::get(shape, t.getElementType());
}

namespace {
/// How a phase's copy of the linear op differs from the op: its initial
/// state (null: none), the types of its output and final state, and the
/// position offset its feature maps add to token positions (null: none).
/// Under `normalize` the copy is unnormalized on v with a column of ones,
/// so its output is [n | z] and its state carries the normalizer.
struct PhaseOp {
  Value init;
  Type oType, stateType;
  Value offset;
};
} // namespace

/// Replaces `op` (a linear op) by its copy for a phase; returns the copy.
static Operation *rebuildForPhase(Operation *op, const PhaseOp &p) {
  OpBuilder b(op);
  OperationState st(op->getLoc(), op->getName());
  st.addAttributes(op->getAttrDictionary().getValue());
  st.attributes.erase("normalize");
  auto segments = op->getAttrOfType<DenseI32ArrayAttr>("operandSegmentSizes");
  SmallVector<int32_t> sizes(segments.asArrayRef());
  // Segments: q, k, v, decay, initial_state[, captures].
  unsigned pos = 0;
  for (auto [i, n] : llvm::enumerate(sizes)) {
    if (i == 4) {
      if (p.init)
        st.addOperands(p.init);
    } else {
      st.addOperands(op->getOperands().slice(pos, n));
    }
    pos += n;
  }
  sizes[4] = p.init ? 1 : 0;
  if (p.offset) {
    st.addOperands(p.offset);
    sizes[5] += 1;
  }
  st.attributes.set("operandSegmentSizes", b.getDenseI32ArrayAttr(sizes));
  st.addTypes({p.oType, p.stateType});
  for (Region &old : op->getRegions()) {
    Region &r = *st.addRegion();
    r.takeBody(old);
    // A feature map taking (x, t) reads global positions.
    if (p.offset && mapReadsPosition(&r))
      lasp::offsetPositions(r, 1, p.offset, op->getLoc());
  }
  Operation *fresh = b.create(st);
  for (auto [old, now] : llvm::zip(op->getResults(), fresh->getResults()))
    old.replaceAllUsesWith(now);
  op->erase();
  return fresh;
}

/// The sum over the chunk's tokens of the log-gates of `op`, of `type`
/// ([B, H] or [B, H, F]); zeros without a decay, N * g_h for per-head ones.
static Value decayTotal(OpBuilder &b, Location loc, LinearOpInterface op,
                        RankedTensorType type) {
  Value q = op.getQ(), g = op.getDecay();
  SmallVector<Value> extents;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (type.isDynamicDim(i))
      extents.push_back(tensor::DimOp::create(b, loc, q, i));
  int64_t rank = g ? cast<RankedTensorType>(g.getType()).getRank() : 0;
  Value n = rank ? tensor::DimOp::create(b, loc, q, 2) : Value();
  auto body = [&](OpBuilder &b, Location loc, ValueRange at) {
    Type f32 = b.getF32Type();
    Value zero = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0));
    Value total = zero;
    if (rank == 1) {
      Value gh = tensor::ExtractOp::create(b, loc, g, ValueRange{at[1]});
      Value n64 = arith::IndexCastOp::create(b, loc, b.getI64Type(), n);
      Value nf = arith::SIToFPOp::create(b, loc, f32, n64);
      total = arith::MulFOp::create(b, loc, nf, gh);
    } else if (rank > 1) {
      Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
      Value c1 = arith::ConstantIndexOp::create(b, loc, 1);
      auto loop = scf::ForOp::create(
          b, loc, c0, n, c1, ValueRange{zero},
          [&](OpBuilder &b, Location loc, Value t, ValueRange acc) {
            SmallVector<Value> idx = {at[0], at[1], t};
            if (rank == 4)
              idx.push_back(at[2]);
            Value gt = tensor::ExtractOp::create(b, loc, g, idx);
            Value sum = arith::AddFOp::create(b, loc, acc[0], gt);
            scf::YieldOp::create(b, loc, sum);
          });
      total = loop.getResult(0);
    }
    tensor::YieldOp::create(b, loc, total);
  };
  return tensor::GenerateOp::create(b, loc, type, extents, body);
}

namespace {
/// The phase functions of one split function. Each phase takes f's
/// arguments (v with a column of ones under normalize), then the position
/// offset when a feature map reads positions, then its own.
struct Splitter {
  func::FuncOp f;
  LinearOpInterface op;
  RankedTensorType stateType, decayType;
  bool normalize, positional;
  /// The phases' output: o, or [n | z] under normalize.
  Type oType;

  Splitter(func::FuncOp f, LinearOpInterface op)
      : f(f), op(op), stateType(stateTypeOf(op)),
        decayType(decayTotalTypeOf(op)), normalize(op.getNormalize()),
        oType(widenLastDim(op.getO().getType(), normalize ? 1 : 0)) {
    positional = false;
    for (Region *r : {op.getQueryMap(), op.getKeyMap()})
      positional |= mapReadsPosition(r);
  }

  std::string name(StringRef phase) { return (f.getName() + phase).str(); }

  /// A new function `name`: f's body and arguments, then `extra` inputs;
  /// returns it and the clone of the op, rebuilt by `phase` (its initial
  /// state from the `init` argument's index among `extra`, or none).
  std::pair<func::FuncOp, Operation *> clonePhase(StringRef suffix,
                                                  TypeRange extra,
                                                  TypeRange results,
                                                  int initArg) {
    SmallVector<Type> inputs;
    if (positional)
      inputs.push_back(lasp::scalarI32Type(f.getContext()));
    inputs.append(extra.begin(), extra.end());
    IRMapping map;
    func::FuncOp g = cloneFunctionBody(f, name(suffix), inputs, results, map);
    Operation *clone = map.lookup(op->getResult(0)).getDefiningOp();
    ValueRange args = g.getArguments().drop_front(f.getNumArguments());
    PhaseOp phase;
    phase.offset = positional ? args.front() : Value();
    ValueRange own = args.drop_front(positional ? 1 : 0);
    phase.init = initArg >= 0 ? own[initArg] : Value();
    phase.oType = oType;
    phase.stateType = stateType;
    if (normalize)
      widenValues(g, cast<LinearOpInterface>(clone).getV());
    return {g, rebuildForPhase(clone, phase)};
  }

  /// Under normalize: v (an argument of g) gets the column of ones.
  void widenValues(func::FuncOp g, Value v) {
    auto arg = cast<BlockArgument>(v);
    arg.setType(widenLastDim(arg.getType(), 1));
    SmallVector<Type> inputs(g.getArgumentTypes());
    inputs[arg.getArgNumber()] = arg.getType();
    g.setType(FunctionType::get(g.getContext(), inputs, g.getResultTypes()));
  }

  /// `@f_lasp_layout()` (SequenceParallel.h): the decay's index is -2
  /// when f computes it (a constant decay: its gradient is dropped).
  void buildLayout() {
    auto argOf = [](Value v) {
      if (!v)
        return -1;
      auto arg = dyn_cast<BlockArgument>(v);
      return arg ? int32_t(arg.getArgNumber()) : -2;
    };
    lasp::buildLayout(f, {argOf(op.getQ()), argOf(op.getK()), argOf(op.getV()),
                          argOf(op.getDecay()), argOf(op.getInitialState()),
                          op.getFinalState() ? 1 : 0, normalize ? 1 : 0,
                          positional ? 1 : 0, /*kind=*/0});
  }

  /// `@f_lasp_state(args) -> (state, log_decay)`.
  void buildState() {
    auto [g, fresh] =
        clonePhase("_lasp_state", {}, {stateType, decayType}, /*initArg=*/-1);
    OpBuilder b = OpBuilder::atBlockEnd(&g.getBody().front());
    auto lin = cast<LinearOpInterface>(fresh);
    Value total = decayTotal(b, g.getLoc(), lin, decayType);
    func::ReturnOp::create(b, g.getLoc(),
                           ValueRange{lin.getFinalState(), total});
  }

  /// `@f<suffix>(states, log_decays, rank) -> combined state`.
  void buildCombine(StringRef suffix, StateCombine kind) {
    OpBuilder b(f.getContext());
    b.setInsertionPointAfter(f);
    Type rankType = lasp::scalarI32Type(f.getContext());
    auto g = func::FuncOp::create(
        b, f.getLoc(), name(suffix),
        b.getFunctionType(
            {gatheredType(stateType), gatheredType(decayType), rankType},
            {stateType}));
    g.setVisibility(f.getVisibility());
    Block *blk = g.addEntryBlock();
    b.setInsertionPointToEnd(blk);
    Location loc = g.getLoc();
    Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
    Value r32 =
        tensor::ExtractOp::create(b, loc, blk->getArgument(2), ValueRange{c0});
    Value rank = arith::IndexCastOp::create(b, loc, b.getIndexType(), r32);
    Value combined =
        CombineStatesOp::create(b, loc, stateType, kind, blk->getArgument(0),
                                blk->getArgument(1), rank);
    func::ReturnOp::create(b, loc, combined);
  }

  /// `@f_lasp_output(args, prefix) -> (o, final_state)`.
  void buildOutput() {
    auto [g, fresh] = clonePhase("_lasp_output", {stateType},
                                 {oType, stateType}, /*initArg=*/0);
    OpBuilder b = OpBuilder::atBlockEnd(&g.getBody().front());
    func::ReturnOp::create(b, g.getLoc(), fresh->getResults());
  }

  void build() {
    // Inserted after f in reverse, so they read in phase order.
    buildOutput();
    buildCombine("_lasp_combine_grad", StateCombine::suffix);
    buildCombine("_lasp_combine", StateCombine::prefix);
    buildState();
    buildLayout();
  }
};

struct AttnSequenceParallelPass
    : public mlir::attn::impl::AttnSequenceParallelBase<
          AttnSequenceParallelPass> {
  using AttnSequenceParallelBase::AttnSequenceParallelBase;
  void runOnOperation() override {
    StringRef pass = "attn-sequence-parallel";
    auto funcs = selectFunctions(getOperation(), funcName, pass);
    if (failed(funcs))
      return signalPassFailure();
    for (func::FuncOp f : *funcs) {
      std::string why;
      Operation *op = splittableOp(f, why);
      if (!op && funcName.empty())
        continue;
      if (!op) {
        f.emitError() << pass << ": function '" << f.getName() << "' " << why;
        return signalPassFailure();
      }
      if (failed(checkNamesFree(f, kPhases, pass)))
        return signalPassFailure();
      if (auto attention = dyn_cast<AttentionOp>(op))
        lasp::buildAttentionPhases(f, attention);
      else
        Splitter(f, cast<LinearOpInterface>(op)).build();
    }
  }
};
} // namespace

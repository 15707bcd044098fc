//===- AttnDialect.cpp - attn dialect, parsing, printing, verifiers -------===//
//
// Part of attnc.
//
//===----------------------------------------------------------------------===//

#include "attnc/Dialect/Attn/Attn.h"
#include "attnc/Dialect/Attn/RegionSafety.h"
#include "attnc/Dialect/Attn/RunAttributes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/FoldInterfaces.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::attn;

#include "Attn/AttnDialect.cpp.inc"
#include "Attn/AttnEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "Attn/AttnAttrs.cpp.inc"

#include "Attn/AttnInterfaces.cpp.inc"

namespace {
/// Constants that folding creates in a score, mask or feature-map region stay
/// in that region: the regions read values from above only through declared
/// captures, and a GPU kernel outlines them away from the function.
struct AttnFoldInterface : public DialectFoldInterface {
  using DialectFoldInterface::DialectFoldInterface;
  bool shouldMaterializeInto(Region *region) const final {
    return isa<AttentionOp, AttentionGradOp, LinearAttentionOp,
               LinearAttentionGradOp, ScanOp>(region->getParentOp());
  }
};
} // namespace

void AttnDialect::initialize() {
  addInterfaces<AttnFoldInterface>();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "Attn/AttnAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "Attn/AttnOps.cpp.inc"
      >();
}

LogicalResult AttnDialect::verifyRegionArgAttribute(Operation *op,
                                                    unsigned regionIndex,
                                                    unsigned argIndex,
                                                    NamedAttribute attr) {
  Type type;
  if (auto fn = dyn_cast<FunctionOpInterface>(op))
    type = fn.getArgumentTypes()[argIndex];
  else if (Region &r = op->getRegion(regionIndex); !r.empty())
    type = r.getArgument(argIndex).getType();
  return verifyRunAttribute(op, argIndex, type, attr);
}

FailureOr<attnc::abi::Kernel> mlir::attn::parseKernelAbi(AsmParser &parser) {
  SMLoc loc = parser.getCurrentLocation();
  std::string text;
  if (failed(parser.parseString(&text)))
    return failure();
  llvm::Expected<llvm::json::Value> json = llvm::json::parse(text);
  llvm::Expected<attnc::abi::Kernel> kernel =
      json ? attnc::abi::parseKernel(*json)
           : llvm::Expected<attnc::abi::Kernel>(json.takeError());
  if (!kernel)
    return parser.emitError(loc) << "invalid kernel ABI record: "
                                 << llvm::toString(kernel.takeError());
  return *kernel;
}

void mlir::attn::printKernelAbi(AsmPrinter &printer,
                                const attnc::abi::Kernel &kernel) {
  printer << '"';
  llvm::printEscapedString(
      attnc::abi::formatJson(attnc::abi::toJson(kernel), /*lines=*/false),
      printer.getStream());
  printer << '"';
}

FailureOr<Target> mlir::attn::parseTargetParameter(AsmParser &parser) {
  SMLoc loc = parser.getCurrentLocation();
  std::string name;
  if (failed(parser.parseOptionalString(&name))) {
    StringRef keyword;
    if (failed(parser.parseKeyword(&keyword)))
      return failure();
    name = keyword.str();
  }
  if (std::optional<Target> t = parseTarget(name))
    return *t;
  return parser.emitError(loc) << "unknown target '" << name << "' (expected "
                               << knownTargetNames() << ")";
}

LogicalResult ScheduleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                   Target target, int64_t blockQ,
                                   int64_t blockKv, int64_t warps,
                                   int64_t stages, int64_t smemBytes) {
  auto isPow2 = [](int64_t x) { return x > 0 && (x & (x - 1)) == 0; };
  if (!isPow2(blockQ) || !isPow2(blockKv))
    return emitError() << "block_q and block_kv must be powers of two, got "
                       << blockQ << " and " << blockKv;
  if (warps <= 0 || stages <= 0)
    return emitError() << "warps and stages must be positive, got " << warps
                       << " and " << stages;
  if (smemBytes < 0)
    return emitError() << "smem_bytes must not be negative, got " << smemBytes;
  return success();
}

LogicalResult
TokenOrderAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                       ArrayRef<int64_t> grid, ArrayRef<int64_t> perm,
                       int64_t review) {
  if (grid.empty() || llvm::any_of(grid, [](int64_t d) { return d <= 0; }))
    return emitError() << "grid dims must be positive";
  if (review < 0)
    return emitError() << "review must not be negative, got " << review;
  SmallVector<int64_t> sorted(perm);
  llvm::sort(sorted);
  for (auto [i, p] : llvm::enumerate(sorted))
    if (p != int64_t(i) || perm.size() != grid.size())
      return emitError() << "perm must be a permutation of 0.."
                         << grid.size() - 1;
  return success();
}

int64_t TokenOrderAttr::getLength() const {
  int64_t n = getReview();
  int64_t g = 1;
  for (int64_t d : getGrid())
    g *= d;
  return n + g;
}

//===----------------------------------------------------------------------===//
// Shared helpers
//===----------------------------------------------------------------------===//

static bool compatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

static std::string dimStr(int64_t d) {
  return ShapedType::isDynamic(d) ? std::string("?") : std::to_string(d);
}

static bool isSupportedFloat(Type t) {
  return t.isF32() || t.isF16() || t.isBF16();
}

/// Parses `name(%a: t, %b: t) { ... }` into `region` if the keyword is there.
static ParseResult parseOptionalNamedRegion(OpAsmParser &parser,
                                            StringRef keyword, Region &region) {
  if (failed(parser.parseOptionalKeyword(keyword)))
    return success();
  SmallVector<OpAsmParser::Argument> args;
  if (parser.parseArgumentList(args, OpAsmParser::Delimiter::Paren,
                               /*allowType=*/true) ||
      parser.parseRegion(region, args))
    return failure();
  if (region.empty())
    return parser.emitError(parser.getCurrentLocation())
           << "'" << keyword << "' region must not be empty";
  return success();
}

static void printNamedRegion(OpAsmPrinter &p, StringRef keyword,
                             Region &region) {
  if (region.empty())
    return;
  p.printNewline();
  p << "  " << keyword << "(";
  llvm::interleaveComma(region.getArguments(), p,
                        [&](BlockArgument arg) { p.printRegionArgument(arg); });
  p << ") ";
  p.printRegion(region, /*printEntryBlockArgs=*/false);
}

static ParseResult
parseCaptures(OpAsmParser &parser,
              SmallVectorImpl<OpAsmParser::UnresolvedOperand> &operands,
              SmallVectorImpl<Type> &types) {
  if (failed(parser.parseOptionalKeyword("captures")))
    return success();
  if (parser.parseLParen() || parser.parseOperandList(operands) ||
      parser.parseColonTypeList(types) || parser.parseRParen())
    return failure();
  if (operands.size() != types.size())
    return parser.emitError(parser.getCurrentLocation())
           << "captures: " << operands.size() << " values but " << types.size()
           << " types";
  return success();
}

static void printCaptures(OpAsmPrinter &p, ValueRange captures) {
  if (captures.empty())
    return;
  p << " captures(" << captures << " : " << captures.getTypes() << ")";
}

/// Parses `scale = <f32>` into the `scale` attribute if the keyword is
/// there.
static ParseResult parseOptionalScale(OpAsmParser &parser,
                                      OperationState &result) {
  if (failed(parser.parseOptionalKeyword("scale")))
    return success();
  FloatAttr scale;
  return failure(parser.parseEqual() ||
                 parser.parseAttribute(scale, parser.getBuilder().getF32Type(),
                                       "scale", result.attributes));
}

static void printOptionalScale(OpAsmPrinter &p, FloatAttr scale) {
  if (!scale)
    return;
  p << " scale = ";
  p.printFloat(scale.getValue());
}

/// A scale attribute, when given, is finite and non-zero.
static LogicalResult verifyScale(Operation *op, FloatAttr scale) {
  if (!scale)
    return success();
  double x = scale.getValueAsDouble();
  if (!std::isfinite(x) || x == 0.0)
    return op->emitOpError() << "scale must be finite and non-zero, got " << x;
  return success();
}

/// Parses `causal` or `bidirectional` into the `direction` attribute.
static ParseResult parseDirection(OpAsmParser &parser, OperationState &result) {
  StringRef keyword;
  llvm::SMLoc loc = parser.getCurrentLocation();
  if (parser.parseKeyword(&keyword))
    return failure();
  std::optional<Direction> dir = symbolizeDirection(keyword);
  if (!dir)
    return parser.emitError(loc) << "expected 'causal' or 'bidirectional', "
                                    "got '"
                                 << keyword << "'";
  result.addAttribute("direction",
                      DirectionAttr::get(parser.getContext(), *dir));
  return success();
}

/// Verifies that `region` has the given argument types and yields one value
/// of type `yieldType` (if non-null; else the yield type is returned).
static LogicalResult verifyRegionSignature(Operation *op, Region &region,
                                           StringRef name,
                                           ArrayRef<Type> argTypes,
                                           Type yieldType) {
  if (region.empty())
    return success();
  Block &block = region.front();
  if (block.getNumArguments() != argTypes.size()) {
    InFlightDiagnostic diag = op->emitOpError()
                              << "'" << name << "' region must take "
                              << argTypes.size() << " arguments (";
    llvm::interleaveComma(argTypes, diag);
    return diag << "), got " << block.getNumArguments();
  }
  for (auto [idx, arg, expected] :
       llvm::enumerate(block.getArguments(), argTypes))
    if (arg.getType() != expected)
      return op->emitOpError()
             << "'" << name << "' region argument #" << idx << " must be "
             << expected << ", got " << arg.getType();
  auto yield = dyn_cast<YieldOp>(block.getTerminator());
  if (!yield)
    return op->emitOpError()
           << "'" << name << "' region must end with attn.yield";
  if (yield.getValues().size() != 1 ||
      (yieldType && yield.getValues()[0].getType() != yieldType))
    return op->emitOpError()
           << "'" << name << "' region must yield one " << yieldType << ", got "
           << yield.getValues().size() << " value(s)"
           << (yield.getValues().size() == 1 ? std::string(" of another type")
                                             : std::string());
  return success();
}

static bool isScalarOrVector(Type t) {
  if (auto vec = dyn_cast<VectorType>(t))
    t = vec.getElementType();
  return t.isIntOrIndexOrFloat();
}

/// Checks that the op's regions are pure scalar (or vector) code, that they
/// only use declared captures from above, and that each capture is used.
static LogicalResult verifyRegionBodies(Operation *op, ValueRange captures,
                                        bool allowVectors) {
  llvm::SmallPtrSet<Value, 4> captureSet(captures.begin(), captures.end());
  llvm::SmallPtrSet<Value, 4> used;
  for (Region &region : op->getRegions()) {
    WalkResult result = region.walk([&](Operation *inner) -> WalkResult {
      if (isa<YieldOp>(inner))
        return WalkResult::advance();
      if (!isMemoryEffectFree(inner)) {
        inner->emitOpError()
            << "has side effects; attn regions must be pure scalar code";
        return WalkResult::interrupt();
      }
      for (Type t : inner->getResultTypes()) {
        if (!isScalarOrVector(t) || (!allowVectors && isa<VectorType>(t))) {
          inner->emitOpError()
              << "produces " << t << "; attn regions must be pure "
              << (allowVectors ? "scalar or vector" : "scalar") << " code";
          return WalkResult::interrupt();
        }
      }
      for (Value operand : inner->getOperands()) {
        if (region.isAncestor(operand.getParentRegion()))
          continue;
        if (!captureSet.contains(operand)) {
          InFlightDiagnostic diag =
              op->emitOpError() << "region uses a value defined outside the "
                                   "op that is not listed in captures(...)";
          diag.attachNote(operand.getLoc()) << "value defined here";
          return WalkResult::interrupt();
        }
        used.insert(operand);
      }
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      return failure();
  }
  for (auto [idx, capture] : llvm::enumerate(captures))
    if (!used.contains(capture))
      return op->emitOpError()
             << "capture #" << idx << " is not used by any region";
  // Divisions and capture reads defined on every (b, h, i, j).
  return verifyRegionSafety(op, captures);
}

static FailureOr<RankedTensorType> getRank4(Operation *op, Value v,
                                            StringRef name) {
  auto type = cast<RankedTensorType>(v.getType());
  if (type.getRank() != 4) {
    op->emitOpError() << name << " must be a rank-4 tensor [B, H, N, D], got "
                      << type;
    return failure();
  }
  if (!isSupportedFloat(type.getElementType())) {
    op->emitOpError() << name << " element type must be f32, f16 or bf16, got "
                      << type.getElementType();
    return failure();
  }
  if (type.isDynamicDim(1) || type.isDynamicDim(3)) {
    op->emitOpError() << name
                      << " must have static head count and head dim, got "
                      << type;
    return failure();
  }
  if (type.getDimSize(1) == 0 || type.getDimSize(3) == 0) {
    op->emitOpError() << name
                      << " must have at least one head and a non-zero head "
                         "dim, got "
                      << type;
    return failure();
  }
  return type;
}

/// Common q/k/v checks of all three ops. Returns failure after a diagnostic.
static LogicalResult verifyQKV(Operation *op, RankedTensorType q,
                               RankedTensorType k, RankedTensorType v,
                               bool sameSeq, bool paged = false) {
  if (q.getElementType() != k.getElementType() ||
      q.getElementType() != v.getElementType())
    return op->emitOpError() << "q, k and v must have the same element type, "
                                "got "
                             << q.getElementType() << ", " << k.getElementType()
                             << " and " << v.getElementType();
  if (paged && !compatible(k.getDimSize(0), v.getDimSize(0)))
    return op->emitOpError()
           << "k and v page pools have different page counts ("
           << dimStr(k.getDimSize(0)) << " vs " << dimStr(v.getDimSize(0))
           << ")";
  if (!paged && (!compatible(q.getDimSize(0), k.getDimSize(0)) ||
                 !compatible(q.getDimSize(0), v.getDimSize(0))))
    return op->emitOpError()
           << "batch sizes of q, k and v differ (" << dimStr(q.getDimSize(0))
           << ", " << dimStr(k.getDimSize(0)) << ", " << dimStr(v.getDimSize(0))
           << ")";
  if (q.getDimSize(3) != k.getDimSize(3))
    return op->emitOpError() << "head dim of q (" << q.getDimSize(3)
                             << ") and k (" << k.getDimSize(3) << ") differ";
  if (k.getDimSize(1) != v.getDimSize(1))
    return op->emitOpError() << "k and v must have the same number of heads, "
                                "got "
                             << k.getDimSize(1) << " and " << v.getDimSize(1);
  if (!compatible(k.getDimSize(2), v.getDimSize(2)))
    return op->emitOpError()
           << "k and v sequence lengths differ (" << dimStr(k.getDimSize(2))
           << " vs " << dimStr(v.getDimSize(2)) << ")";
  if (sameSeq && !compatible(q.getDimSize(2), k.getDimSize(2)))
    return op->emitOpError()
           << "q and k sequence lengths differ (" << dimStr(q.getDimSize(2))
           << " vs " << dimStr(k.getDimSize(2)) << ")";
  if (q.getDimSize(1) % k.getDimSize(1) != 0)
    return op->emitOpError() << "query heads (" << q.getDimSize(1)
                             << ") must be a multiple of key/value heads ("
                             << k.getDimSize(1) << ")";
  return success();
}

/// q, k and v of rank 4 (their types into `q`, `k`, `v`) that pass
/// verifyQKV.
static LogicalResult verifyQKVOperands(Operation *op, Value qv, Value kv,
                                       Value vv, bool sameSeq, bool paged,
                                       FailureOr<RankedTensorType> &q,
                                       FailureOr<RankedTensorType> &k,
                                       FailureOr<RankedTensorType> &v) {
  if (failed(q = getRank4(op, qv, "q")) || failed(k = getRank4(op, kv, "k")) ||
      failed(v = getRank4(op, vv, "v")))
    return failure();
  return verifyQKV(op, *q, *k, *v, sameSeq, paged);
}

static LogicalResult verifyShapeEq(Operation *op, Type actualType,
                                   ArrayRef<int64_t> expected, Type elem,
                                   StringRef name) {
  auto actual = cast<RankedTensorType>(actualType);
  bool ok = actual.getRank() == (int64_t)expected.size() &&
            actual.getElementType() == elem;
  for (unsigned i = 0; ok && i < expected.size(); ++i)
    ok = compatible(actual.getDimSize(i), expected[i]);
  if (ok)
    return success();
  std::string want;
  llvm::raw_string_ostream os(want);
  os << "tensor<";
  for (int64_t d : expected)
    os << dimStr(d) << "x";
  os << elem << ">";
  return op->emitOpError() << name << " must be " << want << ", got " << actual;
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

/// `queries_at_end` needs Nq <= Nk where both are static (`nk`: the key
/// count, possibly dynamic).
static LogicalResult verifyQueriesAtEnd(Operation *op, bool atEnd,
                                        RankedTensorType q, int64_t nk) {
  int64_t nq = q.getDimSize(2);
  if (!atEnd || ShapedType::isDynamic(nq) || ShapedType::isDynamic(nk) ||
      nq <= nk)
    return success();
  return op->emitOpError() << "queries_at_end needs Nq <= Nk (the queries "
                              "are the last Nq key positions), got Nq = "
                           << nq << " and Nk = " << nk;
}

int64_t AttentionOp::getHeadDim() {
  return cast<RankedTensorType>(getQ().getType()).getDimSize(3);
}
int64_t AttentionOp::getValueDim() {
  return cast<RankedTensorType>(getV().getType()).getDimSize(3);
}
int64_t AttentionOp::getNumQueryHeads() {
  return cast<RankedTensorType>(getQ().getType()).getDimSize(1);
}
int64_t AttentionOp::getNumKvHeads() {
  return cast<RankedTensorType>(getK().getType()).getDimSize(1);
}
int64_t AttentionOp::getPageSize() {
  if (!isPaged())
    return 0;
  return cast<RankedTensorType>(getK().getType()).getDimSize(2);
}
float AttentionOp::getEffectiveScale() {
  if (auto s = getScale())
    return s->convertToFloat();
  return 1.0f / std::sqrt(static_cast<float>(getHeadDim()));
}

namespace {
/// An optional operand clause `<keyword>(%x : type)` (pages, kv_lens,
/// sinks, decay, initial_state): parsed first, resolved once the operand
/// order allows.
struct OperandClause {
  std::optional<OpAsmParser::UnresolvedOperand> operand;
  Type type;
  explicit operator bool() const { return operand.has_value(); }
  int32_t count() const { return operand ? 1 : 0; }

  ParseResult parse(OpAsmParser &parser, StringRef keyword) {
    if (failed(parser.parseOptionalKeyword(keyword)))
      return success();
    operand.emplace();
    return failure(parser.parseLParen() || parser.parseOperand(*operand) ||
                   parser.parseColonType(type) || parser.parseRParen());
  }
  ParseResult resolve(OpAsmParser &parser, OperationState &result) const {
    return failure(operand &&
                   parser.resolveOperand(*operand, type, result.operands));
  }
};
} // namespace

/// Prints `<keyword>(%x : type)` when `v` is set.
static void printOperandClause(OpAsmPrinter &p, StringRef keyword, Value v) {
  if (v)
    p << " " << keyword << "(" << v << " : " << v.getType() << ")";
}

ParseResult AttentionOp::parse(OpAsmParser &parser, OperationState &result) {
  SmallVector<OpAsmParser::UnresolvedOperand, 3> qkv;
  SmallVector<OpAsmParser::UnresolvedOperand> captures;
  SmallVector<Type> captureTypes;
  llvm::SMLoc loc = parser.getCurrentLocation();
  OperandClause table, lens, cuQ, cuK, sinks;
  if (parser.parseOperandList(qkv, 3) || table.parse(parser, "pages") ||
      lens.parse(parser, "kv_lens") || cuQ.parse(parser, "cu_seqlens_q") ||
      cuK.parse(parser, "cu_seqlens_k") || sinks.parse(parser, "sinks"))
    return failure();
  if (parseCaptures(parser, captures, captureTypes))
    return failure();
  Builder &b = parser.getBuilder();
  result.addAttribute(
      "operandSegmentSizes",
      b.getDenseI32ArrayAttr({1, 1, 1, table.count(), lens.count(), cuQ.count(),
                              cuK.count(), sinks.count(),
                              int32_t(captures.size())}));
  if (succeeded(parser.parseOptionalKeyword("queries_at_end")))
    result.addAttribute("queries_at_end", b.getUnitAttr());
  if (parseOptionalScale(parser, result))
    return failure();
  Region *score = result.addRegion();
  Region *mask = result.addRegion();
  if (parseOptionalNamedRegion(parser, "score", *score) ||
      parseOptionalNamedRegion(parser, "mask", *mask) ||
      parser.parseOptionalAttrDict(result.attributes) || parser.parseColon())
    return failure();
  SmallVector<Type, 3> inTypes, outTypes;
  if (parser.parseTypeList(inTypes) || parser.parseArrow() ||
      parser.parseTypeList(outTypes))
    return failure();
  if (inTypes.size() != 3)
    return parser.emitError(loc)
           << "expected 3 input types (q, k, v), got " << inTypes.size();
  if (outTypes.empty() || outTypes.size() > 2)
    return parser.emitError(loc)
           << "expected 1 or 2 result types (o and optionally lse)";
  if (parser.resolveOperands(qkv, inTypes, loc, result.operands) ||
      table.resolve(parser, result) || lens.resolve(parser, result) ||
      cuQ.resolve(parser, result) || cuK.resolve(parser, result) ||
      sinks.resolve(parser, result) ||
      parser.resolveOperands(captures, captureTypes, loc, result.operands))
    return failure();
  result.addTypes(outTypes);
  return success();
}

void AttentionOp::print(OpAsmPrinter &p) {
  p << " " << getQ() << ", " << getK() << ", " << getV();
  printOperandClause(p, "pages", getPageTable());
  printOperandClause(p, "kv_lens", getKvLens());
  printOperandClause(p, "cu_seqlens_q", getCuSeqlensQ());
  printOperandClause(p, "cu_seqlens_k", getCuSeqlensK());
  printOperandClause(p, "sinks", getSinks());
  printCaptures(p, getCaptures());
  if (getQueriesAtEnd())
    p << " queries_at_end";
  printOptionalScale(p, getScaleAttr());
  printNamedRegion(p, "score", getScore());
  printNamedRegion(p, "mask", getMask());
  p.printOptionalAttrDict((*this)->getAttrs(),
                          {getScaleAttrName(), getQueriesAtEndAttrName(),
                           getOperandSegmentSizesAttrName()});
  p << " : " << getQ().getType() << ", " << getK().getType() << ", "
    << getV().getType() << " -> " << getO().getType();
  if (getLse())
    p << ", " << getLse().getType();
}

LogicalResult AttentionOp::verify() {
  Operation *op = getOperation();
  // One diagnostic: the first of q, k, v that is malformed.
  FailureOr<RankedTensorType> q = failure(), k = failure(), v = failure();
  if (failed(verifyQKVOperands(op, getQ(), getK(), getV(), /*sameSeq=*/false,
                               isPaged(), q, k, v)))
    return failure();
  FailureOr<int64_t> nk = verifyPageTable(*q, *k);
  if (failed(nk))
    return failure();
  if (Value sinks = getSinks())
    if (failed(verifyShapeEq(op, sinks.getType(), {q->getDimSize(1)},
                             Float32Type::get(getContext()), "sinks")))
      return failure();
  if (Value lens = getKvLens())
    if (failed(verifyShapeEq(op, lens.getType(), {q->getDimSize(0)},
                             IntegerType::get(getContext(), 32), "kv_lens")))
      return failure();
  if (failed(verifyVarlen(*q)))
    return failure();
  int64_t b = q->getDimSize(0), hq = q->getDimSize(1), nq = q->getDimSize(2);
  if (failed(verifyShapeEq(op, getO().getType(), {b, hq, nq, v->getDimSize(3)},
                           q->getElementType(), "result o")))
    return failure();
  if (getLse() &&
      failed(verifyShapeEq(op, getLse().getType(), {b, hq, nq},
                           Float32Type::get(getContext()), "result lse")))
    return failure();
  if (failed(verifyScale(op, getScaleAttr())))
    return failure();
  // Packed sequences: Nq <= Nk holds per sequence, not for the totals.
  if (isVarlen())
    return success();
  return verifyQueriesAtEnd(op, getQueriesAtEnd(), *q, *nk);
}

LogicalResult AttentionOp::verifyVarlen(RankedTensorType q) {
  Value cuQ = getCuSeqlensQ(), cuK = getCuSeqlensK();
  if (!cuQ && !cuK)
    return success();
  if (!cuQ || !cuK)
    return emitOpError() << "cu_seqlens_q and cu_seqlens_k come together";
  if (isPaged() || getKvLens())
    return emitOpError() << "packed sequences (cu_seqlens) do not combine "
                            "with pages or kv_lens yet";
  if (!compatible(q.getDimSize(0), 1))
    return emitOpError() << "packed sequences (cu_seqlens) need q, k and v "
                            "with batch size 1, got "
                         << q.getDimSize(0);
  auto i32 = IntegerType::get(getContext(), 32);
  auto qt = cast<RankedTensorType>(cuQ.getType());
  auto kt = cast<RankedTensorType>(cuK.getType());
  if (qt.getRank() != 1 || kt.getRank() != 1 || qt.getElementType() != i32 ||
      kt.getElementType() != i32)
    return emitOpError() << "cu_seqlens_q and cu_seqlens_k must be rank-1 "
                            "tensors of i32 [B + 1], got "
                         << qt << " and " << kt;
  if (!compatible(qt.getDimSize(0), kt.getDimSize(0)) ||
      (!qt.isDynamicDim(0) && qt.getDimSize(0) < 1))
    return emitOpError() << "cu_seqlens_q and cu_seqlens_k must both hold B "
                            "+ 1 >= 1 offsets, got "
                         << qt << " and " << kt;
  return success();
}

FailureOr<int64_t> AttentionOp::verifyPageTable(RankedTensorType q,
                                                RankedTensorType k) {
  Value table = getPageTable();
  if (!table)
    return k.getDimSize(2);
  auto t = cast<RankedTensorType>(table.getType());
  if (t.getRank() != 2 || !t.getElementType().isInteger(32)) {
    emitOpError() << "page table must be a rank-2 tensor of i32 [B, "
                     "pages per sequence], got "
                  << t;
    return failure();
  }
  if (!compatible(t.getDimSize(0), q.getDimSize(0))) {
    emitOpError() << "page table has " << dimStr(t.getDimSize(0))
                  << " rows but q has batch size " << dimStr(q.getDimSize(0));
    return failure();
  }
  int64_t s = k.getDimSize(2);
  if (ShapedType::isDynamic(s) || s < 1) {
    emitOpError() << "paged k and v need a static page size (dim 2) of at "
                     "least 1, got "
                  << k;
    return failure();
  }
  if (t.isDynamicDim(1))
    return ShapedType::kDynamic;
  return t.getDimSize(1) * s;
}

LogicalResult AttentionOp::verifyRegions() {
  Builder b(getContext());
  Type f32 = b.getF32Type(), idx = b.getIndexType();
  if (failed(verifyRegionSignature(*this, getScore(), "score",
                                   {f32, idx, idx, idx, idx}, f32)) ||
      failed(verifyRegionSignature(*this, getMask(), "mask",
                                   {idx, idx, idx, idx}, b.getI1Type())))
    return failure();
  return verifyRegionBodies(*this, getCaptures(), /*allowVectors=*/false);
}

namespace {
/// A mask region that yields constant true masks nothing: drop it.
struct DropTrivialRegions : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    bool changed = false;
    if (op.hasMaskRegion()) {
      auto yield = cast<YieldOp>(op.getMask().front().getTerminator());
      if (matchPattern(yield.getValues()[0], m_One())) {
        rewriter.modifyOpInPlace(op, [&] { op.getMask().getBlocks().clear(); });
        changed = true;
      }
    }
    if (op.hasScoreRegion()) {
      Block &block = op.getScore().front();
      auto yield = cast<YieldOp>(block.getTerminator());
      if (yield.getValues()[0] == block.getArgument(0)) {
        rewriter.modifyOpInPlace(op,
                                 [&] { op.getScore().getBlocks().clear(); });
        changed = true;
      }
    }
    return success(changed);
  }
};

/// Captures that became unused after the regions were simplified are dropped.
struct DropUnusedCaptures : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    SmallVector<Value> keep;
    for (Value c : op.getCaptures()) {
      bool used = llvm::any_of(c.getUses(), [&](OpOperand &use) {
        return op->isProperAncestor(use.getOwner());
      });
      if (used)
        keep.push_back(c);
    }
    if (keep.size() == op.getCaptures().size())
      return failure();
    rewriter.modifyOpInPlace(op, [&] { op.getCapturesMutable().assign(keep); });
    return success();
  }
};

/// An lse result nobody reads is not computed.
struct DropUnusedLse : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getLse() || !op.getLse().use_empty())
      return failure();
    OperationState state(op.getLoc(), op->getName());
    state.addOperands(op->getOperands());
    state.addAttributes(op->getAttrs());
    state.addTypes(op.getO().getType());
    Region *score = state.addRegion();
    Region *mask = state.addRegion();
    score->takeBody(op.getScore());
    mask->takeBody(op.getMask());
    Operation *newOp = rewriter.create(state);
    rewriter.replaceOp(op, {newOp->getResult(0), Value()});
    return success();
  }
};
} // namespace

void AttentionOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                              MLIRContext *context) {
  results.add<DropTrivialRegions, DropUnusedCaptures, DropUnusedLse>(context);
}

//===----------------------------------------------------------------------===//
// LinearAttentionOp and ScanOp
//===----------------------------------------------------------------------===//

/// Parses the shared syntax:
///   <direction> %q, %k, %v [decay(%g : T)] [initial_state(%s : T)]
///   [captures(...)] [normalize] [scale = f] [feature_map(...) {...}]
///   [key_feature_map(...) {...}] attr-dict : tq, tk, tv -> to [, tstate]
static ParseResult parseLinearLike(OpAsmParser &parser, OperationState &result,
                                   bool isScan) {
  Builder &b = parser.getBuilder();
  llvm::SMLoc loc = parser.getCurrentLocation();
  if (parseDirection(parser, result))
    return failure();
  SmallVector<OpAsmParser::UnresolvedOperand, 3> qkv;
  if (parser.parseOperandList(qkv, 3))
    return failure();
  OperandClause decay, init;
  SmallVector<OpAsmParser::UnresolvedOperand> captures;
  SmallVector<Type> captureTypes;
  if (decay.parse(parser, "decay") || init.parse(parser, "initial_state"))
    return failure();
  if (!isScan) {
    if (parseCaptures(parser, captures, captureTypes))
      return failure();
    if (succeeded(parser.parseOptionalKeyword("normalize")))
      result.addAttribute("normalize", b.getUnitAttr());
    if (parseOptionalScale(parser, result))
      return failure();
    Region *fm = result.addRegion();
    Region *kfm = result.addRegion();
    if (parseOptionalNamedRegion(parser, "feature_map", *fm) ||
        parseOptionalNamedRegion(parser, "key_feature_map", *kfm))
      return failure();
  }
  SmallVector<Type, 3> inTypes, outTypes;
  if (parser.parseOptionalAttrDict(result.attributes) || parser.parseColon() ||
      parser.parseTypeList(inTypes) || parser.parseArrow() ||
      parser.parseTypeList(outTypes))
    return failure();
  if (inTypes.size() != 3)
    return parser.emitError(loc)
           << "expected 3 input types (q, k, v), got " << inTypes.size();
  if (outTypes.empty() || outTypes.size() > 2)
    return parser.emitError(loc)
           << "expected 1 or 2 result types (o and optionally the final state)";
  if (parser.resolveOperands(qkv, inTypes, loc, result.operands) ||
      decay.resolve(parser, result) || init.resolve(parser, result) ||
      parser.resolveOperands(captures, captureTypes, loc, result.operands))
    return failure();
  result.addTypes(outTypes);
  SmallVector<int32_t> segments = {1, 1, 1, decay.count(), init.count()};
  if (!isScan)
    segments.push_back(static_cast<int32_t>(captures.size()));
  result.addAttribute("operandSegmentSizes", b.getDenseI32ArrayAttr(segments));
  return success();
}

/// Prints the shared syntax; `featureMap` and `keyFeatureMap` are the
/// regions as written (null for attn.scan, which has none).
static void printLinearLike(OpAsmPrinter &p, LinearOpInterface op,
                            Region *featureMap, Region *keyFeatureMap) {
  p << " " << stringifyDirection(op.getDirection()) << " " << op.getQ() << ", "
    << op.getK() << ", " << op.getV();
  printOperandClause(p, "decay", op.getDecay());
  printOperandClause(p, "initial_state", op.getInitialState());
  printCaptures(p, op.getCapturedValues());
  if (op.getNormalize())
    p << " normalize";
  printOptionalScale(p, op->getAttrOfType<FloatAttr>("scale"));
  if (featureMap)
    printNamedRegion(p, "feature_map", *featureMap);
  if (keyFeatureMap)
    printNamedRegion(p, "key_feature_map", *keyFeatureMap);
  p.printOptionalAttrDict(op->getAttrs(), {"operandSegmentSizes", "direction",
                                           "normalize", "scale"});
  p << " : " << op.getQ().getType() << ", " << op.getK().getType() << ", "
    << op.getV().getType() << " -> " << op.getO().getType();
  if (Value fin = op.getFinalState())
    p << ", " << fin.getType();
}

static int64_t featureDimOf(Region *fm, int64_t headDim) {
  if (!fm || fm->empty() || !fm->front().mightHaveTerminator())
    return headDim;
  auto yield = dyn_cast<YieldOp>(fm->front().getTerminator());
  if (!yield || yield.getValues().size() != 1)
    return headDim;
  if (auto vec = dyn_cast<VectorType>(yield.getValues()[0].getType()))
    if (vec.getRank() == 1)
      return vec.getDimSize(0);
  return headDim;
}

/// The decay operand of a linear op or its gradient: f32 log-gates of
/// shape [H], [B, H, N] or [B, H, N, F]; constant gates finite and <= 0.
static LogicalResult verifyDecay(Operation *op, Value decay, int64_t b,
                                 int64_t h, int64_t n, int64_t f) {
  if (!decay)
    return success();
  Type f32 = Float32Type::get(op->getContext());
  auto g = cast<RankedTensorType>(decay.getType());
  if (g.getElementType() != f32)
    return op->emitOpError()
           << "decay must hold f32 log-gates, got " << g.getElementType();
  // Constant gates are checked here; others when a kernel is launched.
  DenseFPElementsAttr values;
  if (matchPattern(decay, m_Constant(&values)))
    for (auto [i, x] : llvm::enumerate(values.getValues<APFloat>()))
      if (!(x.convertToDouble() <= 0.0) || !x.isFinite())
        return op->emitOpError()
               << "decay holds log-gates, which must be finite and <= 0 "
                  "(the decay is exp(g)); element "
               << i << " is " << x.convertToDouble();
  if (g.getRank() == 1)
    return verifyShapeEq(op, g, {h}, f32, "per-head decay");
  if (g.getRank() == 3)
    return verifyShapeEq(op, g, {b, h, n}, f32, "per-token decay");
  if (g.getRank() == 4)
    return verifyShapeEq(op, g, {b, h, n, f}, f32,
                         "per-token, per-feature decay");
  return op->emitOpError()
         << "decay must be [H] (per head), [B, H, N] (per token) or "
            "[B, H, N, F] (per token and feature), got "
         << g;
}

static LogicalResult verifyLinearLike(LinearOpInterface op) {
  FailureOr<RankedTensorType> q = failure(), k = failure(), v = failure();
  if (failed(verifyQKVOperands(op, op.getQ(), op.getK(), op.getV(),
                               /*sameSeq=*/true,
                               /*paged=*/false, q, k, v)))
    return failure();
  int64_t b = q->getDimSize(0), h = q->getDimSize(1), n = q->getDimSize(2);
  int64_t f = featureDimOf(op.getQueryMap(), q->getDimSize(3));
  int64_t dv = v->getDimSize(3);
  Type f32 = Float32Type::get(op->getContext());
  if (failed(verifyShapeEq(op, op.getO().getType(), {b, h, n, dv},
                           q->getElementType(), "result o")))
    return failure();
  if (failed(verifyDecay(op, op.getDecay(), b, h, n, f)))
    return failure();
  if (failed(verifyScale(op, op->getAttrOfType<FloatAttr>("scale"))))
    return failure();
  bool causal = op.getDirection() == Direction::causal;
  if (Value init = op.getInitialState()) {
    if (!causal)
      return op->emitOpError() << "initial_state requires a causal scan";
    if (failed(verifyShapeEq(op, init.getType(), {b, h, f, dv}, f32,
                             "initial_state")))
      return failure();
  }
  if (Value fin = op.getFinalState()) {
    if (!causal)
      return op->emitOpError() << "a final state result requires a causal scan";
    if (failed(verifyShapeEq(op, fin.getType(), {b, h, f, dv}, f32,
                             "final state")))
      return failure();
  }
  return success();
}

/// The arguments of feature map `r`: the row, and the position (index)
/// when the region takes two arguments.
static SmallVector<Type> featureMapArgs(Region &r, Type rowType) {
  if (!r.empty() && r.front().getNumArguments() == 2)
    return {rowType, IndexType::get(rowType.getContext())};
  return {rowType};
}

/// The feature-map regions of a linear op or its gradient (both may be
/// empty), for q of type `q`.
static LogicalResult verifyFeatureMaps(Operation *op, Region *featureMap,
                                       Region *keyFeatureMap,
                                       RankedTensorType q) {
  Type rowType =
      VectorType::get({q.getDimSize(3)}, Float32Type::get(op->getContext()));
  int64_t f = featureDimOf(featureMap, q.getDimSize(3));
  Type featType = VectorType::get({f}, Float32Type::get(op->getContext()));
  if (!featureMap->empty() && featureMap->front().mightHaveTerminator()) {
    auto yield = dyn_cast<YieldOp>(featureMap->front().getTerminator());
    if (yield && yield.getValues().size() == 1 &&
        !isa<VectorType>(yield.getValues()[0].getType()))
      return op->emitOpError()
             << "'feature_map' region must yield a vector<Fxf32>, got "
             << yield.getValues()[0].getType();
  }
  if (!keyFeatureMap->empty() && featureMap->empty())
    return op->emitOpError()
           << "'key_feature_map' requires a 'feature_map' region";
  // A feature map takes the row, and optionally the token's position (for
  // position-dependent maps such as cosFormer's reweighting).
  for (auto [r, name] :
       {std::pair<Region *, StringRef>{featureMap, "feature_map"},
        {keyFeatureMap, "key_feature_map"}})
    if (!r->empty() && r->front().getNumArguments() > 2)
      return op->emitOpError()
             << "'" << name << "' region must take the row (" << rowType
             << ") and optionally the token's position (index), got "
             << r->front().getNumArguments() << " arguments";
  if (failed(verifyRegionSignature(op, *featureMap, "feature_map",
                                   featureMapArgs(*featureMap, rowType),
                                   featType)) ||
      failed(verifyRegionSignature(op, *keyFeatureMap, "key_feature_map",
                                   featureMapArgs(*keyFeatureMap, rowType),
                                   featType)))
    return failure();
  return success();
}

/// The feature-map regions of an attn.linear_attention (both may be empty).
static LogicalResult verifyLinearRegions(LinearAttentionOp op) {
  if (failed(verifyFeatureMaps(op, &op.getFeatureMap(), &op.getKeyFeatureMap(),
                               cast<RankedTensorType>(op.getQ().getType()))))
    return failure();
  return verifyRegionBodies(op, op.getCaptures(), /*allowVectors=*/true);
}

ParseResult LinearAttentionOp::parse(OpAsmParser &parser,
                                     OperationState &result) {
  return parseLinearLike(parser, result, /*isScan=*/false);
}
void LinearAttentionOp::print(OpAsmPrinter &p) {
  printLinearLike(p, *this, &getFeatureMap(), &getKeyFeatureMap());
}
/// A token order is for one sequence length: a static one must match.
static LogicalResult verifyTokenOrder(Operation *op, TokenOrderAttr order,
                                      Value q) {
  if (!order)
    return success();
  int64_t n = cast<RankedTensorType>(q.getType()).getDimSize(2);
  if (!ShapedType::isDynamic(n) && n != order.getLength())
    return op->emitOpError()
           << "token order is for sequences of " << order.getLength()
           << " tokens (review + product(grid)), got " << n;
  return success();
}

LogicalResult LinearAttentionOp::verify() {
  // Shapes first: the token order reads q's sequence length.
  if (failed(verifyLinearLike(*this)))
    return failure();
  return verifyTokenOrder(*this, getOrderAttr(), getQ());
}
LogicalResult LinearAttentionOp::verifyRegions() {
  return verifyLinearRegions(*this);
}
Region *LinearAttentionOp::getQueryMap() {
  return getFeatureMap().empty() ? nullptr : &getFeatureMap();
}
Region *LinearAttentionOp::getKeyMap() {
  return getKeyFeatureMap().empty() ? getQueryMap() : &getKeyFeatureMap();
}
int64_t LinearAttentionOp::getFeatureDim() {
  return featureDimOf(&getFeatureMap(),
                      cast<RankedTensorType>(getQ().getType()).getDimSize(3));
}

ParseResult ScanOp::parse(OpAsmParser &parser, OperationState &result) {
  return parseLinearLike(parser, result, /*isScan=*/true);
}
void ScanOp::print(OpAsmPrinter &p) {
  printLinearLike(p, *this, nullptr, nullptr);
}
LogicalResult ScanOp::verify() {
  // Shapes first: the token order reads q's sequence length.
  if (failed(verifyLinearLike(*this)))
    return failure();
  return verifyTokenOrder(*this, getOrderAttr(), getQ());
}
LogicalResult ScanOp::verifyRegions() { return success(); }
int64_t ScanOp::getFeatureDim() {
  return cast<RankedTensorType>(getQ().getType()).getDimSize(3);
}

//===----------------------------------------------------------------------===//
// AttentionGradOp
//===----------------------------------------------------------------------===//

int64_t AttentionGradOp::getHeadDim() {
  return cast<RankedTensorType>(getQ().getType()).getDimSize(3);
}
int64_t AttentionGradOp::getValueDim() {
  return cast<RankedTensorType>(getV().getType()).getDimSize(3);
}
int64_t AttentionGradOp::getNumQueryHeads() {
  return cast<RankedTensorType>(getQ().getType()).getDimSize(1);
}
int64_t AttentionGradOp::getNumKvHeads() {
  return cast<RankedTensorType>(getK().getType()).getDimSize(1);
}
float AttentionGradOp::getEffectiveScale() {
  if (auto s = getScale())
    return s->convertToFloat();
  return 1.0f / std::sqrt(static_cast<float>(getHeadDim()));
}

AttentionOp AttentionGradOp::createForwardView() {
  MLIRContext *ctx = getContext();
  OperationState state(getLoc(), AttentionOp::getOperationName());
  state.addOperands({getQ(), getK(), getV()});
  state.addOperands(getCaptures());
  state.addAttribute(
      AttentionOp::getOperandSegmentSizesAttrName(state.name),
      DenseI32ArrayAttr::get(
          ctx, {1, 1, 1, 0, 0, 0, 0, 0, int32_t(getCaptures().size())}));
  state.addTypes(getO().getType());
  if (auto scale = getScaleAttr())
    state.addAttribute("scale", scale);
  if (getQueriesAtEnd())
    state.addAttribute("queries_at_end", UnitAttr::get(ctx));
  state.addRegion();
  state.addRegion();
  Operation *view = Operation::create(state);
  IRMapping map;
  getScore().cloneInto(&view->getRegion(0), map);
  getMask().cloneInto(&view->getRegion(1), map);
  return cast<AttentionOp>(view);
}

SmallVector<unsigned> AttentionGradOp::getGradCaptureIndices() {
  llvm::SmallPtrSet<Value, 4> read;
  getScore().walk([&](Operation *op) {
    for (Value operand : op->getOperands())
      read.insert(operand);
  });
  SmallVector<unsigned> result;
  for (auto [idx, capture] : llvm::enumerate(getCaptures()))
    if (isa<FloatType>(
            cast<RankedTensorType>(capture.getType()).getElementType()) &&
        read.contains(capture))
      result.push_back(idx);
  return result;
}

ParseResult AttentionGradOp::parse(OpAsmParser &parser,
                                   OperationState &result) {
  SmallVector<OpAsmParser::UnresolvedOperand, 6> fixed;
  SmallVector<OpAsmParser::UnresolvedOperand> captures;
  SmallVector<Type> captureTypes;
  llvm::SMLoc loc = parser.getCurrentLocation();
  if (parser.parseOperandList(fixed) ||
      parseCaptures(parser, captures, captureTypes))
    return failure();
  if (fixed.size() != 6 && fixed.size() != 7)
    return parser.emitError(loc) << "expected 6 or 7 operands (q, k, v, o, "
                                    "lse, dO and optionally dLSE), got "
                                 << fixed.size();
  Builder &b = parser.getBuilder();
  if (succeeded(parser.parseOptionalKeyword("queries_at_end")))
    result.addAttribute("queries_at_end", b.getUnitAttr());
  if (parseOptionalScale(parser, result))
    return failure();
  Region *score = result.addRegion();
  Region *mask = result.addRegion();
  Region *scoreGrad = result.addRegion();
  if (parseOptionalNamedRegion(parser, "score", *score) ||
      parseOptionalNamedRegion(parser, "mask", *mask) ||
      parseOptionalNamedRegion(parser, "score_grad", *scoreGrad) ||
      parser.parseOptionalAttrDict(result.attributes) || parser.parseColon())
    return failure();
  SmallVector<Type, 6> inTypes, outTypes;
  if (parser.parseTypeList(inTypes) || parser.parseArrow() ||
      parser.parseTypeList(outTypes))
    return failure();
  if (inTypes.size() != fixed.size())
    return parser.emitError(loc)
           << "expected " << fixed.size()
           << " input types (q, k, v, o, lse, dO and optionally dLSE), got "
           << inTypes.size();
  if (outTypes.size() < 3)
    return parser.emitError(loc)
           << "expected at least 3 result types (dq, dk, dv), got "
           << outTypes.size();
  if (parser.resolveOperands(fixed, inTypes, loc, result.operands) ||
      parser.resolveOperands(captures, captureTypes, loc, result.operands))
    return failure();
  result.addAttribute(
      "operandSegmentSizes",
      b.getDenseI32ArrayAttr({1, 1, 1, 1, 1, 1, int32_t(fixed.size() - 6),
                              int32_t(captures.size())}));
  result.addTypes(outTypes);
  return success();
}

void AttentionGradOp::print(OpAsmPrinter &p) {
  p << " " << getQ() << ", " << getK() << ", " << getV() << ", " << getO()
    << ", " << getLse() << ", " << getDO();
  if (Value dlse = getDLse())
    p << ", " << dlse;
  printCaptures(p, getCaptures());
  if (getQueriesAtEnd())
    p << " queries_at_end";
  printOptionalScale(p, getScaleAttr());
  printNamedRegion(p, "score", getScore());
  printNamedRegion(p, "mask", getMask());
  printNamedRegion(p, "score_grad", getScoreGrad());
  SmallVector<StringRef, 4> elided = {getScaleAttrName(),
                                      getQueriesAtEndAttrName(),
                                      getOperandSegmentSizesAttrName()};
  if (getCaptureSites().empty())
    elided.push_back(getCaptureSitesAttrName());
  p.printOptionalAttrDict((*this)->getAttrs(), elided);
  p << " : ";
  SmallVector<Value, 7> fixed = {getQ(), getK(),   getV(),
                                 getO(), getLse(), getDO()};
  if (Value dlse = getDLse())
    fixed.push_back(dlse);
  llvm::interleaveComma(ValueRange(fixed).getTypes(), p);
  p << " -> ";
  llvm::interleaveComma(getResultTypes(), p);
}

LogicalResult AttentionGradOp::verify() {
  Operation *op = getOperation();
  FailureOr<RankedTensorType> q = failure(), k = failure(), v = failure();
  if (failed(verifyQKVOperands(op, getQ(), getK(), getV(), /*sameSeq=*/false,
                               /*paged=*/false, q, k, v)))
    return failure();
  int64_t b = q->getDimSize(0), hq = q->getDimSize(1), nq = q->getDimSize(2);
  Type elem = q->getElementType(), f32 = Float32Type::get(getContext());
  SmallVector<int64_t> oShape = {b, hq, nq, v->getDimSize(3)};
  if (failed(verifyShapeEq(op, getO().getType(), oShape, elem, "o")) ||
      failed(verifyShapeEq(op, getLse().getType(), {b, hq, nq}, f32, "lse")) ||
      failed(verifyShapeEq(op, getDO().getType(), oShape, elem, "dO")))
    return failure();
  if (Value dlse = getDLse())
    if (failed(verifyShapeEq(op, dlse.getType(), {b, hq, nq}, f32, "dLSE")))
      return failure();
  for (auto [name, result, operand] :
       {std::tuple<StringRef, Value, Value>{"dq", getDq(), getQ()},
        {"dk", getDk(), getK()},
        {"dv", getDv(), getV()}})
    if (result.getType() != operand.getType())
      return emitOpError() << "result " << name << " must have the type of "
                           << name.drop_front() << " (" << operand.getType()
                           << "), got " << result.getType();
  if (failed(verifyScale(op, getScaleAttr())))
    return failure();
  return verifyQueriesAtEnd(op, getQueriesAtEnd(), *q, k->getDimSize(2));
}

/// The score_grad region yields dS/ds, then per capture site the partial
/// derivative and the element's indices.
static LogicalResult verifyScoreGrad(AttentionGradOp op) {
  Builder b(op.getContext());
  Type f32 = b.getF32Type(), idx = b.getIndexType();
  if (op.hasScoreRegion() != !op.getScoreGrad().empty())
    return op.emitOpError()
           << (op.hasScoreRegion()
                   ? "has a 'score' region but no 'score_grad' region; run "
                     "attn-differentiate to make one"
                   : "has a 'score_grad' region but no 'score' region");
  if (op.getScoreGrad().empty())
    return op.getCaptureSites().empty()
               ? success()
               : op.emitOpError() << "capture_sites without a 'score_grad'";
  SmallVector<Type> yields = {f32};
  SmallVector<unsigned> gradCaptures = op.getGradCaptureIndices();
  for (auto [site, c] : llvm::enumerate(op.getCaptureSites())) {
    if (c < 0 || c >= int64_t(op.getCaptures().size()) ||
        !llvm::is_contained(gradCaptures, unsigned(c)))
      return op.emitOpError()
             << "capture_sites[" << site << "] = " << c
             << " is not a captured float tensor read by the 'score' region";
    yields.push_back(f32);
    auto t = cast<RankedTensorType>(op.getCaptures()[c].getType());
    yields.append(t.getRank(), idx);
  }
  Block &block = op.getScoreGrad().front();
  if (TypeRange(block.getArgumentTypes()) !=
      TypeRange({f32, idx, idx, idx, idx}))
    return op.emitOpError() << "'score_grad' region must take the arguments "
                               "of 'score' (f32, index, index, index, index)";
  auto yield = dyn_cast<YieldOp>(block.getTerminator());
  if (!yield)
    return op.emitOpError() << "'score_grad' region must end with attn.yield";
  if (TypeRange(yield.getValues()) != TypeRange(yields)) {
    InFlightDiagnostic diag =
        op.emitOpError() << "'score_grad' region must yield dS/ds and, per "
                            "capture site, the derivative and the indices (";
    llvm::interleaveComma(yields, diag);
    return diag << "), got " << yield.getValues().size() << " value(s)";
  }
  return success();
}

LogicalResult AttentionGradOp::verifyRegions() {
  Builder b(getContext());
  Type f32 = b.getF32Type(), idx = b.getIndexType();
  if (failed(verifyRegionSignature(*this, getScore(), "score",
                                   {f32, idx, idx, idx, idx}, f32)) ||
      failed(verifyRegionSignature(*this, getMask(), "mask",
                                   {idx, idx, idx, idx}, b.getI1Type())))
    return failure();
  if (failed(verifyScoreGrad(*this)))
    return failure();
  SmallVector<unsigned> gradCaptures = getGradCaptureIndices();
  if (getCaptureGrads().size() != gradCaptures.size())
    return emitOpError() << "expects " << gradCaptures.size()
                         << " capture gradient(s) (one per captured float "
                            "tensor the 'score' region reads), got "
                         << getCaptureGrads().size();
  for (auto [r, c] : llvm::enumerate(gradCaptures)) {
    auto t = cast<RankedTensorType>(getCaptures()[c].getType());
    Type want = RankedTensorType::get(t.getShape(), f32);
    if (getCaptureGrads()[r].getType() != want)
      return emitOpError() << "capture gradient #" << r << " must be " << want
                           << " (capture #" << c << "'s shape, f32), got "
                           << getCaptureGrads()[r].getType();
  }
  return verifyRegionBodies(*this, getCaptures(), /*allowVectors=*/false);
}

//===----------------------------------------------------------------------===//
// LinearAttentionGradOp
//===----------------------------------------------------------------------===//

int64_t LinearAttentionGradOp::getFeatureDim() {
  return featureDimOf(&getFeatureMap(),
                      cast<RankedTensorType>(getQ().getType()).getDimSize(3));
}

Region *LinearAttentionGradOp::getQueryJvp() {
  return getFeatureMapJvp().empty() ? nullptr : &getFeatureMapJvp();
}

Region *LinearAttentionGradOp::getKeyJvp() {
  return getKeyFeatureMap().empty() ? getQueryJvp() : &getKeyFeatureMapJvp();
}

LinearAttentionOp LinearAttentionGradOp::createForwardView() {
  MLIRContext *ctx = getContext();
  OperationState state(getLoc(), LinearAttentionOp::getOperationName());
  state.addOperands({getQ(), getK(), getV()});
  int32_t decay = getDecay() ? 1 : 0, init = getInitialState() ? 1 : 0;
  if (decay)
    state.addOperands(getDecay());
  if (init)
    state.addOperands(getInitialState());
  state.addOperands(getCaptures());
  state.addAttribute(
      LinearAttentionOp::getOperandSegmentSizesAttrName(state.name),
      DenseI32ArrayAttr::get(
          ctx, {1, 1, 1, decay, init, int32_t(getCaptures().size())}));
  state.addAttribute("direction", getDirectionAttr());
  state.addTypes(getDO().getType());
  if (Value dfin = getDFinalState())
    state.addTypes(dfin.getType());
  if (getNormalize())
    state.addAttribute("normalize", UnitAttr::get(ctx));
  if (auto scale = getScaleAttr())
    state.addAttribute("scale", scale);
  if (auto order = getOrderAttr())
    state.addAttribute("order", order);
  state.addRegion();
  state.addRegion();
  Operation *view = Operation::create(state);
  IRMapping map;
  getFeatureMap().cloneInto(&view->getRegion(0), map);
  getKeyFeatureMap().cloneInto(&view->getRegion(1), map);
  return cast<LinearAttentionOp>(view);
}

/// Syntax:
///   <direction> %q, %k, %v, %dO [decay(..)] [initial_state(..)]
///   [final_state_grad(..)] [captures(..)] [normalize] [scale = f]
///   [feature_map(..) {..}] [key_feature_map(..) {..}]
///   [feature_map_jvp(..) {..}] [key_feature_map_jvp(..) {..}] attr-dict
///   : tq, tk, tv, tdO -> tdq, tdk, tdv [, tdecay] [, tinit]
ParseResult LinearAttentionGradOp::parse(OpAsmParser &parser,
                                         OperationState &result) {
  Builder &b = parser.getBuilder();
  llvm::SMLoc loc = parser.getCurrentLocation();
  if (parseDirection(parser, result))
    return failure();
  SmallVector<OpAsmParser::UnresolvedOperand, 4> fixed;
  OperandClause decay, init, dfin;
  SmallVector<OpAsmParser::UnresolvedOperand> captures;
  SmallVector<Type> captureTypes;
  if (parser.parseOperandList(fixed, 4) || decay.parse(parser, "decay") ||
      init.parse(parser, "initial_state") ||
      dfin.parse(parser, "final_state_grad") ||
      parseCaptures(parser, captures, captureTypes))
    return failure();
  if (succeeded(parser.parseOptionalKeyword("normalize")))
    result.addAttribute("normalize", b.getUnitAttr());
  if (parseOptionalScale(parser, result))
    return failure();
  for (StringRef name : {"feature_map", "key_feature_map", "feature_map_jvp",
                         "key_feature_map_jvp"})
    if (parseOptionalNamedRegion(parser, name, *result.addRegion()))
      return failure();
  SmallVector<Type, 4> inTypes, outTypes;
  if (parser.parseOptionalAttrDict(result.attributes) || parser.parseColon() ||
      parser.parseTypeList(inTypes) || parser.parseArrow() ||
      parser.parseTypeList(outTypes))
    return failure();
  if (inTypes.size() != 4)
    return parser.emitError(loc)
           << "expected 4 input types (q, k, v, dO), got " << inTypes.size();
  size_t wantOut = 3 + decay.count() + init.count();
  if (outTypes.size() != wantOut)
    return parser.emitError(loc)
           << "expected " << wantOut
           << " result types (dq, dk, dv, then the gradients of the decay "
              "and the initial state when given), got "
           << outTypes.size();
  if (parser.resolveOperands(fixed, inTypes, loc, result.operands) ||
      decay.resolve(parser, result) || init.resolve(parser, result) ||
      dfin.resolve(parser, result) ||
      parser.resolveOperands(captures, captureTypes, loc, result.operands))
    return failure();
  result.addAttribute(
      "operandSegmentSizes",
      b.getDenseI32ArrayAttr({1, 1, 1, 1, decay.count(), init.count(),
                              dfin.count(), int32_t(captures.size())}));
  result.addAttribute(
      "resultSegmentSizes",
      b.getDenseI32ArrayAttr({1, 1, 1, decay.count(), init.count()}));
  result.addTypes(outTypes);
  return success();
}

void LinearAttentionGradOp::print(OpAsmPrinter &p) {
  p << " " << stringifyDirection(getDirection()) << " " << getQ() << ", "
    << getK() << ", " << getV() << ", " << getDO();
  printOperandClause(p, "decay", getDecay());
  printOperandClause(p, "initial_state", getInitialState());
  printOperandClause(p, "final_state_grad", getDFinalState());
  printCaptures(p, getCaptures());
  if (getNormalize())
    p << " normalize";
  printOptionalScale(p, getScaleAttr());
  printNamedRegion(p, "feature_map", getFeatureMap());
  printNamedRegion(p, "key_feature_map", getKeyFeatureMap());
  printNamedRegion(p, "feature_map_jvp", getFeatureMapJvp());
  printNamedRegion(p, "key_feature_map_jvp", getKeyFeatureMapJvp());
  p.printOptionalAttrDict((*this)->getAttrs(),
                          {"operandSegmentSizes", "resultSegmentSizes",
                           "direction", "normalize", "scale"});
  p << " : " << getQ().getType() << ", " << getK().getType() << ", "
    << getV().getType() << ", " << getDO().getType() << " -> ";
  llvm::interleaveComma(getResultTypes(), p);
}

LogicalResult LinearAttentionGradOp::verify() {
  Operation *op = getOperation();
  FailureOr<RankedTensorType> q = failure(), k = failure(), v = failure();
  if (failed(verifyQKVOperands(op, getQ(), getK(), getV(), /*sameSeq=*/true,
                               /*paged=*/false, q, k, v)))
    return failure();
  int64_t b = q->getDimSize(0), h = q->getDimSize(1), n = q->getDimSize(2);
  int64_t f = getFeatureDim(), dv = v->getDimSize(3);
  Type f32 = Float32Type::get(getContext());
  if (failed(verifyShapeEq(op, getDO().getType(), {b, h, n, dv},
                           q->getElementType(), "dO")) ||
      failed(verifyDecay(op, getDecay(), b, h, n, f)))
    return failure();
  bool causal = getDirection() == Direction::causal;
  for (auto [name, state] :
       {std::pair<StringRef, Value>{"initial_state", getInitialState()},
        {"final_state_grad", getDFinalState()}}) {
    if (!state)
      continue;
    if (!causal)
      return emitOpError() << name << " requires a causal scan";
    if (failed(verifyShapeEq(op, state.getType(), {b, h, f, dv}, f32, name)))
      return failure();
  }
  for (auto [name, operandName, result, operand] :
       {std::tuple<StringRef, StringRef, Value, Value>{"dq", "q", getDq(),
                                                       getQ()},
        {"dk", "k", getDk(), getK()},
        {"dv", "v", getDv(), getV()},
        {"d_decay", "decay", getDDecay(), getDecay()},
        {"d_initial_state", "initial_state", getDInitialState(),
         getInitialState()}}) {
    if (bool(result) != bool(operand))
      return emitOpError() << "has " << (result ? "a" : "no") << " result "
                           << name << " but " << (operand ? "an" : "no")
                           << " operand " << operandName;
    if (result && result.getType() != operand.getType())
      return emitOpError() << "result " << name << " must have the type of "
                           << operandName << " (" << operand.getType()
                           << "), got " << result.getType();
  }
  if (failed(verifyScale(op, getScaleAttr())))
    return failure();
  return verifyTokenOrder(op, getOrderAttr(), getQ());
}

/// A `*_jvp` region: the map's arguments and a tangent row, yielding the
/// map's type; present exactly when its map is.
static LogicalResult verifyJvpRegion(Operation *op, Region &map, Region &jvp,
                                     StringRef name, RankedTensorType q,
                                     int64_t f) {
  if (map.empty() != jvp.empty())
    return op->emitOpError()
           << (map.empty()
                   ? "has a '" + name.str() + "_jvp' region but no '" +
                         name.str() + "'"
                   : "has a '" + name.str() + "' region but no '" + name.str() +
                         "_jvp' region; run attn-differentiate to "
                         "make one");
  Type f32 = Float32Type::get(op->getContext());
  Type rowType = VectorType::get({q.getDimSize(3)}, f32);
  SmallVector<Type> args = featureMapArgs(map, rowType);
  args.push_back(rowType);
  return verifyRegionSignature(op, jvp, (name + "_jvp").str(), args,
                               VectorType::get({f}, f32));
}

LogicalResult LinearAttentionGradOp::verifyRegions() {
  auto q = cast<RankedTensorType>(getQ().getType());
  if (failed(
          verifyFeatureMaps(*this, &getFeatureMap(), &getKeyFeatureMap(), q)) ||
      failed(verifyJvpRegion(*this, getFeatureMap(), getFeatureMapJvp(),
                             "feature_map", q, getFeatureDim())) ||
      failed(verifyJvpRegion(*this, getKeyFeatureMap(), getKeyFeatureMapJvp(),
                             "key_feature_map", q, getFeatureDim())))
    return failure();
  return verifyRegionBodies(*this, getCaptures(), /*allowVectors=*/true);
}

#define GET_OP_CLASSES
#include "Attn/AttnOps.cpp.inc"

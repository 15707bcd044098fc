//===- RunAttributes.cpp - attn.run_init and attn.run_dims ----------------===//
//
// Part of attnc.
//
//===----------------------------------------------------------------------===//

#include "attnc/Dialect/Attn/RunAttributes.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/StringSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::attn;

namespace {
using Mode = RunInit::Mode;

/// The mode named `name` for float or integer elements (nullopt: unknown).
std::optional<Mode> modeNamed(StringRef name, bool isFloat) {
  if (isFloat)
    return name == "uniform" ? std::optional<Mode>(Mode::Uniform)
                             : std::nullopt;
  return llvm::StringSwitch<std::optional<Mode>>(name)
      .Case("sorted", Mode::Sorted)
      .Case("randint", Mode::Randint)
      .Case("bits", Mode::Bits)
      .Case("permutation", Mode::Permutation)
      .Case("kv_lens", Mode::KvLens)
      .Case("cu_seqlens", Mode::CuSeqlens)
      .Default(std::nullopt);
}

/// What is wrong with the numbers of `init` ("" when nothing is).
std::string checkParams(StringRef mode, const RunInit &init) {
  size_t n = init.params.size();
  switch (init.mode) {
  case Mode::Uniform:
    if (n != 0 && n != 2)
      return "expected uniform:lo:hi";
    if (n == 2 && !(init.params[0] < init.params[1]))
      return "lo must be below hi";
    return "";
  case Mode::Sorted:
  case Mode::Randint:
    if ((n != 0 && n != 2) || init.param(0, 0) > init.param(1, 3))
      return ("expected " + mode + ":lo:hi with lo <= hi").str();
    return "";
  case Mode::Bits: {
    double p = init.param(0, 0.5);
    if (n > 1 || !(p >= 0 && p <= 1))
      return "expected bits:p with p in [0, 1]";
    return "";
  }
  case Mode::Permutation:
  case Mode::KvLens:
  case Mode::CuSeqlens:
    return n ? (mode + " takes no numbers").str() : "";
  case Mode::Default:
    return "";
  }
  return "";
}
} // namespace

FailureOr<RunInit> mlir::attn::parseRunInit(StringRef text, bool isFloat,
                                            std::string &why) {
  RunInit init;
  if (text.empty())
    return init;
  SmallVector<StringRef> parts;
  text.split(parts, ':');
  auto error = [&](const Twine &msg) {
    why = ("attn.run_init '" + text + "': " + msg).str();
    return failure();
  };
  for (StringRef p : llvm::drop_begin(parts)) {
    double v;
    if (p.getAsDouble(v) || !std::isfinite(v))
      return error("'" + p + "' is not a number");
    init.params.push_back(v);
  }
  std::optional<Mode> mode = modeNamed(parts[0], isFloat);
  if (!mode) {
    why = ("unknown attn.run_init '" + text + "' for " +
           (isFloat ? "a float argument (expected uniform:lo:hi)"
                    : "an integer argument (expected bits:p, randint:lo:hi, "
                      "sorted:lo:hi, permutation, kv_lens or cu_seqlens)"))
              .str();
    return failure();
  }
  init.mode = *mode;
  std::string bad = checkParams(parts[0], init);
  if (!bad.empty())
    return error(bad);
  return init;
}

FailureOr<RunDim> mlir::attn::parseRunDim(StringRef text) {
  auto [head, div] = text.split('/');
  RunDim d;
  d.base = llvm::StringSwitch<RunDim::Base>(head)
               .Case("b", RunDim::Base::Batch)
               .Case("nq", RunDim::Base::Queries)
               .Case("nk", RunDim::Base::Keys)
               .Case("n", RunDim::Base::Longest)
               .Default(RunDim::Base::Constant);
  if (d.base == RunDim::Base::Constant &&
      (head.getAsInteger(10, d.value) || d.value <= 0))
    return failure();
  if (!div.empty() && (div.getAsInteger(10, d.divisor) || d.divisor <= 0))
    return failure();
  return d;
}

FailureOr<int64_t> RunDim::resolve(int64_t batch, int64_t nq,
                                   int64_t nk) const {
  int64_t v = value;
  switch (base) {
  case Base::Batch:
    v = batch;
    break;
  case Base::Queries:
    v = nq;
    break;
  case Base::Keys:
    v = nk;
    break;
  case Base::Longest:
    v = std::max(nq, nk);
    break;
  case Base::Constant:
    break;
  }
  v = v / divisor + (v % divisor != 0); // ceil without overflow
  if (v <= 0)
    return failure();
  return v;
}

LogicalResult mlir::attn::verifyRunAttribute(Operation *op, unsigned argIndex,
                                             Type type, NamedAttribute attr) {
  auto error = [&]() {
    return op->emitError() << "argument #" << argIndex << ": ";
  };
  // Tensors; memrefs once a pipeline has bufferized the function.
  auto tensor = dyn_cast<ShapedType>(type);
  if (tensor && !tensor.hasRank())
    tensor = nullptr;
  if (attr.getName() == kRunInitAttrName) {
    auto text = dyn_cast<StringAttr>(attr.getValue());
    if (!text)
      return error() << kRunInitAttrName << " must be a string";
    if (!tensor)
      return error() << kRunInitAttrName << " needs a ranked tensor, got "
                     << type;
    std::string why;
    if (failed(parseRunInit(text.getValue(),
                            isa<FloatType>(tensor.getElementType()), why)))
      return error() << why;
    return success();
  }
  if (attr.getName() == kRunDimsAttrName) {
    auto dims = dyn_cast<ArrayAttr>(attr.getValue());
    bool ok = dims && tensor && dims.size() == size_t(tensor.getRank()) &&
              llvm::all_of(dims, [](Attribute a) {
                auto s = dyn_cast<StringAttr>(a);
                return s && succeeded(parseRunDim(s.getValue()));
              });
    if (!ok)
      return error() << kRunDimsSyntax;
    return success();
  }
  return error() << "unknown argument attribute '" << attr.getName().getValue()
                 << "' (the attn dialect declares " << kRunInitAttrName
                 << " and " << kRunDimsAttrName << ")";
}

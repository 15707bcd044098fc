//===- AttnInterfaces.td - attn dialect op interfaces -------*- tablegen -*-===//
#ifndef ATTN_INTERFACES_TD
#define ATTN_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Attn_LinearOpInterface : OpInterface<"LinearOpInterface"> {
  let cppNamespace = "::mlir::attn";
  let description = [{
    What `attn.linear_attention` and `attn.scan` have in common: q, k, v,
    an optional decay of log-gates, optional initial and final states, a
    direction, a token order and a schedule. `attn.scan` has no feature
    maps, captures, normalizer or scale; it answers as the identity map,
    no captures, no normalizer and scale 1. Parsing, printing, verifying,
    scheduling and every lowering of the two ops go through it.
  }];
  let methods = [
    InterfaceMethod<"The queries [B, H, N, D].", "::mlir::Value", "getQ">,
    InterfaceMethod<"The keys [B, Hk, N, D].", "::mlir::Value", "getK">,
    InterfaceMethod<"The values [B, Hk, N, Dv].", "::mlir::Value", "getV">,
    InterfaceMethod<"The log-gates (null without a decay).", "::mlir::Value",
                    "getDecay">,
    InterfaceMethod<"The initial state [B, H, F, Dv] (null without one).",
                    "::mlir::Value", "getInitialState">,
    InterfaceMethod<"The output [B, H, N, Dv].", "::mlir::Value", "getO">,
    InterfaceMethod<"The final state result (null without one).",
                    "::mlir::Value", "getFinalState">,
    InterfaceMethod<"Causal or bidirectional.", "::mlir::attn::Direction",
                    "getDirection">,
    InterfaceMethod<"Tensors the feature-map regions read.",
                    "::mlir::ValueRange", "getCapturedValues">,
    InterfaceMethod<[{The query feature map: null for the identity (no
                      region, or an empty one).}], "::mlir::Region *",
                    "getQueryMap">,
    InterfaceMethod<[{The key feature map: the key region when it is
                      given, else the query map (null: the identity).}],
                    "::mlir::Region *", "getKeyMap">,
    InterfaceMethod<"Whether o is divided by the normalizer.", "bool",
                    "getNormalize">,
    InterfaceMethod<"The factor applied to q (1 when not given).", "float",
                    "getEffectiveScale">,
    InterfaceMethod<"The feature dimension F (D without a feature map).",
                    "int64_t", "getFeatureDim">,
    InterfaceMethod<"The token order (null: storage order).",
                    "::mlir::attn::TokenOrderAttr", "getOrderAttr">,
    InterfaceMethod<"The schedule (null before attn-select-schedule).",
                    "::mlir::attn::ScheduleAttr", "getScheduleAttr">
  ];
}

#endif // ATTN_INTERFACES_TD

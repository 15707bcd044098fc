// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule=target=sm_90a --convert-attn-to-gpu | FileCheck %s

// Causal: the last q tile visits the most kv tiles, so the kernel takes its
// q tiles last-first (q tile = gridDim.x - 1 - blockIdx.x): the heaviest
// blocks start first.
// CHECK-LABEL: gpu.func @causal(
// CHECK: %[[X:.*]] = gpu.block_id x
// CHECK: %[[N:.*]] = gpu.grid_dim x
// CHECK: %[[LAST:.*]] = arith.subi %[[N]], %{{.*}} : index
// CHECK: arith.subi %[[LAST]], %[[X]] : index
func.func @causal(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                  %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %m = arith.cmpi uge, %i, %j : index
      attn.yield %m : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// Anti-causal (keys at or after the query): the first q tile is the
// heaviest, the grid's order stays.
// CHECK-LABEL: gpu.func @anticausal(
// CHECK-NOT: gpu.grid_dim x
// CHECK: gpu.return
func.func @anticausal(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                      %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %m = arith.cmpi ule, %i, %j : index
      attn.yield %m : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// RUN: attn-opt %s --convert-attn-to-reference --split-input-file | FileCheck %s

// The naive definition: a full score row per query (mask applied as -inf),
// its maximum, exponentials against it, one division, lse = m + log(l).
// CHECK-LABEL: func.func @causal_lse
// CHECK: %[[ROW:.*]] = memref.alloc(%{{.*}}) : memref<?xf32>
// CHECK: scf.for
// CHECK: arith.cmpi uge
// CHECK: arith.select
// CHECK: memref.store %{{.*}}, %[[ROW]]
// CHECK: arith.maximumf
// CHECK: memref.load %[[ROW]]
// CHECK: math.exp
// CHECK: arith.divf
// CHECK: math.log
// CHECK: memref.dealloc %[[ROW]]
// CHECK-NOT: attn.attention
func.func @causal_lse(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                      %v: tensor<?x4x?x64xf32>)
    -> (tensor<?x4x?x64xf32>, tensor<?x4x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
  return %o, %lse : tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
}

// -----

// Linear attention with a per-token gate: cumulative log-gates, then the
// quadratic form with weights exp(-|L_t - L_s|).
// CHECK-LABEL: func.func @gated
// CHECK: memref.alloc(%{{.*}}) : memref<?xf32>
// CHECK: math.absf
// CHECK: math.exp
// CHECK: vector.fma
// CHECK-NOT: attn.scan
func.func @gated(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
                 %v: tensor<?x2x?x16xf32>, %g: tensor<?x2x?xf32>)
    -> tensor<?x2x?x16xf32> {
  %o = attn.scan causal %q, %k, %v decay(%g : tensor<?x2x?xf32>)
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}

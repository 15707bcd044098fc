// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule="block-q=32 block-kv=16" --attn-tile --split-input-file | FileCheck %s
// RUN: not attn-opt %s --attn-tile -o /dev/null 2>&1 | FileCheck %s --check-prefix=UNSCHEDULED

// Causal: the tile classes come from the interval classifier (no block map),
// kv tiles run over [lo, hi), full tiles run without the mask, partial ones
// with it; exp2 for the softmax, one normalization at the end.
// CHECK-LABEL: func.func @causal
// CHECK: memref.alloc() : memref<32xf32>
// CHECK: memref.alloc() : memref<32x64xf32>
// CHECK: %[[RANGE:.*]]:2 = scf.for {{.*}} -> (index, index)
// CHECK: scf.for %{{.*}} = %[[RANGE]]#0 to %[[RANGE]]#1
// CHECK: scf.if
// CHECK: scf.if
// CHECK-NOT: arith.cmpi uge
// CHECK: math.exp2
// CHECK: } else {
// CHECK: arith.cmpi uge
// CHECK: math.exp2
// CHECK: arith.divf
// CHECK: bufferization.to_tensor
// CHECK-NOT: attn.attention
func.func @causal(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                  %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

// No mask: no classes, every kv tile visited, no scf.if on tile classes.
// CHECK-LABEL: func.func @full
// CHECK-NOT: memref<?xi8>
// CHECK-NOT: scf.if
// CHECK: math.exp2
// CHECK: return
func.func @full(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

// A mask on captured data: a [q tiles x kv tiles] block map is filled once
// (the mask depends on neither b nor h) before the batch loop.
// CHECK-LABEL: func.func @documents
// CHECK: %[[MAP:.*]] = memref.alloc({{.*}}) : memref<?x?xi8>
// CHECK: memref.store {{.*}}, %[[MAP]]
// CHECK: scf.for
// CHECK: memref.load %[[MAP]]
func.func @documents(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                     %v: tensor<?x4x?x64xf32>, %docs: tensor<?xi32>)
    -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v captures(%docs : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %di = tensor.extract %docs[%i] : tensor<?xi32>
      %dj = tensor.extract %docs[%j] : tensor<?xi32>
      %c = arith.cmpi eq, %di, %dj : i32
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

// UNSCHEDULED: has no #attn.schedule; run attn-select-schedule before attn-tile
func.func @unscheduled(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                       %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

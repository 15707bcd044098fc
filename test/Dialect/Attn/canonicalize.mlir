// RUN: attn-opt %s -canonicalize | FileCheck %s

// A mask region that yields constant true masks nothing: it is removed.
// CHECK-LABEL: func.func @trivial_mask
// CHECK: attn.attention %{{.*}}, %{{.*}}, %{{.*}} :
// CHECK-NOT: mask(
// CHECK: return
func.func @trivial_mask(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                        %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %t = arith.constant true
      attn.yield %t : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// A mask that folds to true (i >= i) is removed too, and so is the capture
// that only it used.
// CHECK-LABEL: func.func @folded_mask
// CHECK: attn.attention %{{.*}}, %{{.*}}, %{{.*}} :
// CHECK-NOT: captures
// CHECK-NOT: mask(
// CHECK: return
func.func @folded_mask(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                       %v: tensor<?x4x?x64xf32>, %d: tensor<?xi32>)
    -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v captures(%d : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %di = tensor.extract %d[%i] : tensor<?xi32>
      %c = arith.cmpi eq, %di, %di : i32
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// A score region that yields the score unchanged is removed; the mask stays.
// CHECK-LABEL: func.func @identity_score
// CHECK: attn.attention %{{.*}}, %{{.*}}, %{{.*}} scale = 1.250000e-01
// CHECK-NOT: score(
// CHECK: mask(
// CHECK: arith.cmpi uge
// CHECK: return
func.func @identity_score(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                          %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v scale = 0.125
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      attn.yield %s : f32
    }
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// A non-trivial score region and mask are kept.
// CHECK-LABEL: func.func @kept
// CHECK: score(
// CHECK: math.tanh
// CHECK: mask(
// CHECK: arith.cmpi uge
func.func @kept(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %t = math.tanh %s : f32
      attn.yield %t : f32
    }
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// An lse result nobody reads is dropped; the regions move to the new op.
// CHECK-LABEL: func.func @unused_lse
// CHECK: %[[O:.*]] = attn.attention
// CHECK: mask(
// CHECK: arith.cmpi uge
// CHECK: -> tensor<?x4x?x64xf32>{{$}}
// CHECK: return %[[O]]
func.func @unused_lse(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                      %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o, %lse = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
  return %o : tensor<?x4x?x64xf32>
}

// A used lse stays.
// CHECK-LABEL: func.func @used_lse
// CHECK: %{{.*}}, %{{.*}} = attn.attention
// CHECK-SAME: -> tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
func.func @used_lse(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                    %v: tensor<?x4x?x64xf32>) -> (tensor<?x4x?x64xf32>, tensor<?x4x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
  return %o, %lse : tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
}

// An attention whose results are all unused is erased (it is Pure).
// CHECK-LABEL: func.func @dead
// CHECK-NOT: attn.attention
// CHECK: return
func.func @dead(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                %v: tensor<?x4x?x64xf32>) {
  %o, %lse = attn.attention %q, %k, %v
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
  return
}

// Constants in a mask region stay there (they are not hoisted into the
// function, where the region could not read them).
// CHECK-LABEL: func.func @window_constants
// CHECK-NEXT: attn.attention
// CHECK: mask(
// CHECK: arith.constant 128 : index
// CHECK: attn.yield
func.func @window_constants(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                            %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %w = arith.constant 128 : index
      %jw = arith.addi %j, %w : index
      %near = arith.cmpi ult, %i, %jw : index
      %causal = arith.cmpi uge, %i, %j : index
      %keep = arith.andi %near, %causal : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// convert-attn-linear-to-gpu with a token order (#attn.token_order): the scan
// position s of every row the kernel stages (q, k, v), every gate it loads
// and every row of o it stores maps to the token's storage row in the
// addressing itself (no copy): review tokens (s < review) unchanged, then
// the grid step s - review as digits in scan order (innermost first:
// rem/div by the dim sizes grid[perm[i]]), each times its row-major storage
// stride, plus review; the identity when N != review + product(grid)
// (lib/Transforms/Linear.cpp's tok on the CPU).
// RUN: attn-opt %s --attn-select-schedule=target=sm_80 --convert-attn-linear-to-gpu --split-input-file | FileCheck %s
// The MATE example (bf16): each layer's scan kernel in its own module beside
// convert-attn-to-gpu's TESA attention kernel (@<func>_linear_kernels).
// RUN: sed -e 's/?x4x?x64xf32>/?x4x?x64xbf16>/g' %examples/mate.mlir | \
// RUN:   attn-opt --attn-analyze-masks --attn-select-schedule=target=sm_80 --convert-attn-to-gpu --convert-attn-linear-to-gpu | FileCheck %s --check-prefix=MATE

// grid [2, 3, 4] (strides 12, 4, 1), perm [2, 0, 1], review 2 (N = 26):
// innermost digit over dim perm[2] = 1 (size 3, stride 4), then dim 0
// (size 2, stride 12), the outermost (dim 2, stride 1) is the quotient left.
// CHECK-LABEL: func.func @ordered
// CHECK: attn.scan bidirectional {{.*}}attn.gpu_kernel = "ordered"
// CHECK: gpu.func @ordered(
// CHECK-DAG: %[[C26:.*]] = arith.constant 26 : index
// CHECK: %[[ON:.*]] = arith.cmpi eq, %arg6, %[[C26]] : index
// q's first staged row: s = valid ? row : 0, then its storage row.
// CHECK: arith.cmpi ult
// CHECK: %[[S:.*]] = arith.select %{{.*}}, %{{.*}}, %c0 : index
// CHECK: %[[GRID:.*]] = arith.cmpi uge, %[[S]], %[[R:c2[_0-9]*]] : index
// CHECK: %[[STEP:.*]] = arith.subi %[[S]], %[[R]] : index
// CHECK: %[[REM:.*]] = arith.select %[[GRID]], %[[STEP]], %c0{{(_[0-9]+)?}} : index
// CHECK: %[[D2:.*]] = arith.remui %[[REM]], %[[C3:c3[_0-9]*]] : index
// CHECK: %[[Q2:.*]] = arith.divui %[[REM]], %[[C3]] : index
// CHECK: %[[P2:.*]] = arith.muli %[[D2]], %c4{{(_[0-9]+)?}} : index
// CHECK: %[[D1:.*]] = arith.remui %[[Q2]], %[[C2:c2[_0-9]*]] : index
// CHECK: %[[D0:.*]] = arith.divui %[[Q2]], %[[C2]] : index
// CHECK: %[[P1:.*]] = arith.muli %[[D1]], %c12{{(_[0-9]+)?}} : index
// CHECK: %[[A:.*]] = arith.addi %[[P2]], %[[P1]] : index
// CHECK: %[[PHYS:.*]] = arith.addi %[[A]], %[[D0]] : index
// CHECK: %[[USE:.*]] = arith.andi %[[GRID]], %[[ON]] : i1
// CHECK: %[[TOK:.*]] = arith.addi %[[PHYS]], %[[R]] : index
// CHECK: %[[ROW:.*]] = arith.select %[[USE]], %[[TOK]], %[[S]] : index
// CHECK: %[[OFF:.*]] = arith.muli %[[ROW]], %arg9 : index
// CHECK: nvgpu.device_async_copy %arg0[
// Gates: the token's storage row times g_stride_n.
// CHECK: arith.cmpi ult, %{{.*}}, %arg6 : index
// CHECK: %[[GS:.*]] = arith.select %{{.*}}, %{{.*}}, %c0{{(_[0-9]+)?}} : index
// CHECK: arith.remui %{{.*}}, %c3{{(_[0-9]+)?}} : index
// CHECK: %[[GROW:.*]] = arith.select %{{.*}}, %{{.*}}, %[[GS]] : index
// CHECK-NEXT: arith.muli %[[GROW]], %arg21 : index
// CHECK: memref.load %arg3[
// o (stored in storage order): the row's storage row times o_stride_n.
// CHECK: arith.remui %{{.*}}, %c3{{(_[0-9]+)?}} : index
// CHECK: arith.select %{{.*}}, %{{.*}}, %{{.*}} : index
// CHECK: arith.muli %{{.*}}, %arg18 : index
// CHECK: vector.store %{{.*}}, %arg4[
func.func @ordered(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>,
                   %v: tensor<?x2x?x64xbf16>, %g: tensor<?x2x?xf32>)
    -> tensor<?x2x?x64xbf16> {
  %o = attn.scan bidirectional %q, %k, %v decay(%g : tensor<?x2x?xf32>)
    {order = #attn.token_order<grid = [2, 3, 4], perm = [2, 0, 1], review = 2>}
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
      -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}

// -----

// No review tokens, a 2-D grid [8, 16] scanned column-major (perm [1, 0]):
// s -> (s mod 8) * 16 + s / 8, with no review comparison.
// CHECK-LABEL: func.func @no_review
// CHECK: gpu.func @no_review(
// CHECK: %[[ON:.*]] = arith.cmpi eq, %arg5, %c128{{(_[0-9]+)?}} : index
// CHECK: arith.cmpi ult
// CHECK: %[[S:.*]] = arith.select %{{.*}}, %{{.*}}, %c0 : index
// CHECK-NOT: arith.cmpi uge
// CHECK: %[[D1:.*]] = arith.remui %[[S]], %[[C8:c8[_0-9]*]] : index
// CHECK: %[[D0:.*]] = arith.divui %[[S]], %[[C8]] : index
// CHECK: %[[P1:.*]] = arith.muli %[[D1]], %c16{{(_[0-9]+)?}} : index
// CHECK: %[[PHYS:.*]] = arith.addi %[[P1]], %[[D0]] : index
// CHECK: %[[ROW:.*]] = arith.select %[[ON]], %{{.*}}, %[[S]] : index
// CHECK: arith.muli %[[ROW]], %arg{{[0-9]+}} : index
// CHECK: nvgpu.device_async_copy %arg0[
func.func @no_review(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>,
                     %v: tensor<?x2x?x64xbf16>) -> tensor<?x2x?x64xbf16> {
  %o = attn.scan causal %q, %k, %v
    {order = #attn.token_order<grid = [8, 16], perm = [1, 0], review = 0>}
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
      -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}

// The MATE layers: N = 4 + 4 * 6 * 8 = 196 in each; layer 0 scans in storage
// order (innermost dim 2: size 8, then dim 1: size 6), layer 1 with perm
// [1, 2, 0] (innermost T: size 4, stride 48; then W: size 8, stride 1; H
// outermost, stride 8), layer 2 with perm [2, 0, 1] (H: 6 then T: 4).
// MATE: gpu.module @mate_layer0_kernels
// MATE: gpu.module @mate_layer1_kernels
// MATE: gpu.module @mate_layer2_kernels
// MATE: gpu.module @mate_layer0_linear_kernels
// MATE: gpu.func @mate_layer0_linear(
// MATE: arith.cmpi eq, %arg6, %c196{{(_[0-9]+)?}} : index
// MATE: arith.cmpi uge, %{{.*}}, %c4{{(_[0-9]+)?}} : index
// MATE: arith.remui %{{.*}}, %c8{{(_[0-9]+)?}} : index
// MATE: arith.remui %{{.*}}, %c6{{(_[0-9]+)?}} : index
// MATE: nvgpu.device_async_copy
// MATE: gpu.module @mate_layer1_linear_kernels
// MATE: gpu.func @mate_layer1_linear(
// MATE: arith.cmpi eq, %arg6, %c196{{(_[0-9]+)?}} : index
// MATE: arith.cmpi uge, %{{.*}}, %c4{{(_[0-9]+)?}} : index
// MATE: %[[T1:.*]] = arith.remui %{{.*}}, %c4{{(_[0-9]+)?}} : index
// MATE: arith.muli %[[T1]], %c48{{(_[0-9]+)?}} : index
// MATE: arith.remui %{{.*}}, %c8{{(_[0-9]+)?}} : index
// MATE: nvgpu.device_async_copy
// MATE: gpu.module @mate_layer2_linear_kernels
// MATE: gpu.func @mate_layer2_linear(
// MATE: arith.cmpi eq, %arg6, %c196{{(_[0-9]+)?}} : index
// MATE: arith.cmpi uge, %{{.*}}, %c4{{(_[0-9]+)?}} : index
// MATE: %[[H2:.*]] = arith.remui %{{.*}}, %c6{{(_[0-9]+)?}} : index
// MATE: arith.muli %[[H2]], %c8{{(_[0-9]+)?}} : index
// MATE: %[[T2:.*]] = arith.remui %{{.*}}, %c4{{(_[0-9]+)?}} : index
// MATE: arith.muli %[[T2]], %c48{{(_[0-9]+)?}} : index
// MATE: nvgpu.device_async_copy

// -----

// With a feature kernel (a captured projection): the feature kernel's thread
// t is the scan position; it reads q, k at the token's storage row and
// writes phi(q), phi(k) to workspace row t, so the chunked kernel stages the
// workspaces unmapped and maps only v (and o). grid [3, 5], perm [1, 0],
// review 1: s -> 1 + ((s - 1) mod 3) * 5 + (s - 1) / 3.
// CHECK-LABEL: func.func @ordered_features
// CHECK: gpu.func @ordered_features(
// CHECK-NOT: arith.remui %{{.*}}, %c3{{(_[0-9]+)?}} : index
// CHECK: nvgpu.device_async_copy %arg0[
// CHECK-NOT: arith.remui %{{.*}}, %c3{{(_[0-9]+)?}} : index
// CHECK: nvgpu.device_async_copy %arg1[
// CHECK: arith.remui %{{.*}}, %c3{{(_[0-9]+)?}} : index
// CHECK: nvgpu.device_async_copy %arg2[
// CHECK: gpu.func @ordered_features_phi(
// CHECK: %[[T:.*]] = arith.addi %{{.*}}, %thread_id_x : index
// CHECK: %[[ON:.*]] = arith.cmpi eq, %arg6, %c16{{(_[0-9]+)?}} : index
// CHECK: %[[D1:.*]] = arith.remui %{{.*}}, %c3{{(_[0-9]+)?}} : index
// CHECK: %[[D0:.*]] = arith.divui %{{.*}}, %c3{{(_[0-9]+)?}} : index
// CHECK: %[[P1:.*]] = arith.muli %[[D1]], %c5{{(_[0-9]+)?}} : index
// CHECK: %[[ROW:.*]] = arith.select %{{.*}}, %{{.*}}, %[[T]] : index
// CHECK: scf.if
// CHECK: arith.muli %[[ROW]], %arg9 : index
// CHECK: %[[WROW:.*]] = arith.addi %{{.*}}, %[[T]] : index
// CHECK: arith.muli %[[WROW]], %c64{{(_[0-9]+)?}} : index
func.func @ordered_features(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>,
                            %v: tensor<?x2x?x64xbf16>, %w: tensor<64xf32>)
    -> tensor<?x2x?x64xbf16> {
  %o = attn.linear_attention causal %q, %k, %v captures(%w : tensor<64xf32>)
    feature_map(%x: vector<64xf32>) {
      %c0 = arith.constant 0 : index
      %pad = arith.constant 0.0 : f32
      %wv = vector.transfer_read %w[%c0], %pad {in_bounds = [true]}
        : tensor<64xf32>, vector<64xf32>
      %r = arith.mulf %x, %wv : vector<64xf32>
      attn.yield %r : vector<64xf32>
    } {order = #attn.token_order<grid = [3, 5], perm = [1, 0], review = 1>}
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
      -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}

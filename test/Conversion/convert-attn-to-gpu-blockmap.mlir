// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule=target=sm_90a --convert-attn-to-gpu | FileCheck %s

// The attention kernel is the sm_90a TMA + wgmma kernel.
// CHECK: gpu.func @document_mask(
// CHECK-SAME: attn.tma_args = array<i32: 0, 1, 2>
// CHECK: nvvm.wgmma.mma_async
// A document mask (a conjunct docs[i] == docs[j]) and causal: the block-map
// kernel first reduces the range of doc ids over the tile's rows and columns
// (atomic min/max in its workgroup scratch), classifies the tile from those
// ranges with the interval rules, and evaluates the elements, in 4x4
// blocks, only when that leaves it partial.
// CHECK: gpu.func @document_mask_blockmap
// CHECK-SAME: workgroup(%{{.*}} : memref<6xi32, #gpu.address_space<workgroup>>)
// CHECK-DAG: memref.atomic_rmw mins
// CHECK-DAG: memref.atomic_rmw maxs
// CHECK: arith.cmpi slt
// CHECK: arith.cmpi slt
// CHECK: scf.for
// CHECK-COUNT-16: arith.cmpi eq, %{{.*}}, %{{.*}} : i32
func.func @document_mask(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                         %v: tensor<?x4x?x64xbf16>, %docs: tensor<?xi32>)
    -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%docs : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %causal = arith.cmpi uge, %i, %j : index
      %di = tensor.extract %docs[%i] : tensor<?xi32>
      %dj = tensor.extract %docs[%j] : tensor<?xi32>
      %same = arith.cmpi eq, %di, %dj : i32
      %m = arith.andi %same, %causal : i1
      attn.yield %m : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// A block layout read at (i / 128, j / 128) on 128 x 128 tiles: the indices
// are one point over a tile, so the map kernel loads the layout byte once
// (only where the point check holds) and classifies the tile from it before
// any per-element pass.
// CHECK: gpu.func @block_sparse_blockmap
// CHECK: scf.if %{{.*}} -> (index) {
// CHECK-NEXT: memref.load %{{.*}}[%{{.*}}, %{{.*}}] : memref<?x?xi8>
// CHECK-NEXT: arith.index_cast %{{.*}} : i8 to index
// CHECK: scf.for
// CHECK-COUNT-16: memref.load %{{.*}} : memref<?x?xi8>
func.func @block_sparse(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                        %v: tensor<?x4x?x64xbf16>, %layout: tensor<?x?xi8>)
    -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%layout : tensor<?x?xi8>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %bs = arith.constant 128 : index
      %zero = arith.constant 0 : i8
      %bi = arith.divui %i, %bs : index
      %bj = arith.divui %j, %bs : index
      %x = tensor.extract %layout[%bi, %bj] : tensor<?x?xi8>
      %keep = arith.cmpi ne, %x, %zero : i8
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// A score that selects -inf far from the diagonal (folded into the mask)
// around a tanh softcap, with a block-layout mask: the attention kernel
// applies tanh.approx.f32 per score element as an llvm.inline_asm with the
// register constraint "f" (nvvm.inline_ptx passed constant operands as
// immediates, 'n', which LLVM rejects for f32). The block map evaluates the
// -inf condition only: no tanh (evaluated at s = 0, it would be dead).
// CHECK: gpu.func @softcap_window_blocks(
// CHECK: llvm.inline_asm has_side_effects asm_dialect = att "tanh.approx.f32 $0, $1;", "=f,f" %{{.*}} : (f32) -> f32
// CHECK: gpu.func @softcap_window_blocks_blockmap
// CHECK: scf.for
// CHECK-COUNT-16: memref.load %{{.*}} : memref<?x?xi8>
// CHECK-NOT: tanh.approx
// CHECK: gpu.return
// CHECK-NOT: tanh.approx
// CHECK: }
func.func @softcap_window_blocks(%q: tensor<?x4x?x64xbf16>,
                                 %k: tensor<?x4x?x64xbf16>,
                                 %v: tensor<?x4x?x64xbf16>,
                                 %layout: tensor<?x?xi8>)
    -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%layout : tensor<?x?xi8>)
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %d = arith.subi %i, %j : index
      %a = math.absi %d : index
      %w = arith.constant 100 : index
      %far = arith.cmpi sgt, %a, %w : index
      %ninf = arith.constant 0xFF800000 : f32
      %cap = arith.constant 2.000000e+01 : f32
      %x = arith.divf %s, %cap : f32
      %t = math.tanh %x : f32
      %y = arith.mulf %cap, %t : f32
      %r = arith.select %far, %ninf, %y : f32
      attn.yield %r : f32
    }
    mask(%b: index, %h: index, %i: index, %j: index) {
      %bs = arith.constant 64 : index
      %zero = arith.constant 0 : i8
      %bi = arith.divui %i, %bs : index
      %bj = arith.divui %j, %bs : index
      %x = tensor.extract %layout[%bi, %bj] : tensor<?x?xi8>
      %keep = arith.cmpi ne, %x, %zero : i8
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

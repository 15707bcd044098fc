// RUN: attn-opt %s --attn-analyze-masks=tile-map=256,256,64,64 | FileCheck %s --check-prefix=MAP
// RUN: attn-opt %s --attn-analyze-masks=tile-map=130,260,32,64 -o /dev/null | FileCheck %s --check-prefix=ODD
// RUN: attn-opt %s --attn-analyze-masks | FileCheck %s
// RUN: not attn-opt %s --attn-analyze-masks=tile-map=256,256,64 2>&1 | FileCheck %s --check-prefix=BADMAP
// RUN: not attn-opt %s --attn-analyze-masks=tile-map=256,256,0,64 2>&1 | FileCheck %s --check-prefix=BADMAP0

// RUN: attn-opt %s --attn-analyze-masks=tile-map=256,8,1,1 -o /dev/null | FileCheck %s --check-prefix=EDGE
// RUN: attn-opt %s --attn-analyze-masks=tile-map=257,8,1,1 -o /dev/null | FileCheck %s --check-prefix=ROWS --implicit-check-not=kv
// RUN: attn-opt %s --attn-analyze-masks=tile-map=8,257,1,1 -o /dev/null | FileCheck %s --check-prefix=COLS --implicit-check-not=kv
// RUN: attn-opt %s --attn-analyze-masks=tile-map=19200,19200,64,64 -o /dev/null | FileCheck %s --check-prefix=BIG --implicit-check-not=kv
// RUN: attn-opt %s --attn-analyze-masks=tile-map=9223372036854775807,9223372036854775807,1,1 -o /dev/null | FileCheck %s --check-prefix=HUGE --implicit-check-not=kv

// Tile maps: F full, P partial, . empty, R decided at run time; each q tile
// visits the kv tiles [lo, hi).

// BADMAP: tile-map takes 4 values (Nq,Nk,block_q,block_kv), got 3
// BADMAP0: tile-map values must be positive

// Tile maps are printed up to 256 x 256 tiles (EDGE); past that in either
// direction they print the count of each class and say why (ROWS, COLS,
// BIG). Past 2^20 tiles they are not classified at all (the HUGE map has
// 2^126 tiles, a count that overflows int64).
// EDGE-LABEL: tile map of {{.*}} Nq=256 Nk=8 tile 1x1 kind none
// EDGE:       q255 FFFFFFFF kv [0, 8)
// EDGE-NEXT:   visited 2048 of 2048 tiles
// ROWS-LABEL: tile map of {{.*}} Nq=257 Nk=8 tile 1x1 kind none
// ROWS-NEXT:   truncated: 257x8 tiles exceed the 256x256 printed at most; tiles per class instead
// ROWS-NEXT:   tiles: 2056 F, 0 P, 0 R, 0 .
// ROWS-NEXT:   visited 2056 of 2056 tiles
// COLS-LABEL: tile map of {{.*}} Nq=8 Nk=257 tile 1x1 kind none
// COLS-NEXT:   truncated: 8x257 tiles exceed the 256x256 printed at most; tiles per class instead
// COLS-NEXT:   tiles: 2056 F, 0 P, 0 R, 0 .
// COLS-NEXT:   visited 2056 of 2056 tiles
// BIG-LABEL: tile map of {{.*}} Nq=19200 Nk=19200 tile 64x64 kind none
// BIG-NEXT:   truncated: 300x300 tiles exceed the 256x256 printed at most; tiles per class instead
// BIG-NEXT:   tiles: 90000 F, 0 P, 0 R, 0 .
// BIG-NEXT:   visited 90000 of 90000 tiles
// BIG-LABEL: tile map of {{.*}} kind index
// BIG-NEXT:   truncated: 300x300 tiles
// BIG-NEXT:   tiles: 44850 F, 300 P, 0 R, 44850 .
// BIG-NEXT:   visited 45150 of 90000 tiles
// HUGE-LABEL: tile map of {{.*}} Nq=9223372036854775807 Nk=9223372036854775807 tile 1x1 kind none
// HUGE-NEXT:   truncated: 9223372036854775807x9223372036854775807 tiles exceed the 256x256 printed at most; tiles per class instead
// HUGE-NEXT:   not classified: more than the 1048576 tiles classified at most (use larger tiles)

// No mask: every tile is full.
// MAP-LABEL: tile map of {{.*}} Nq=256 Nk=256 tile 64x64 kind none
// MAP-NEXT:   q0 FFFF kv [0, 4)
// MAP-NEXT:   q1 FFFF kv [0, 4)
// MAP-NEXT:   q2 FFFF kv [0, 4)
// MAP-NEXT:   q3 FFFF kv [0, 4)
// MAP-NEXT:   visited 16 of 16 tiles
// CHECK-LABEL: func.func @full
// CHECK: mask_info = #attn.mask_info<kind = none, batch = false, head = false, from_score = false>
func.func @full(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// Causal: diagonal tiles partial, below full, above empty (never visited).
// MAP-LABEL: tile map of {{.*}} Nq=256 Nk=256 tile 64x64 kind index
// MAP-NEXT:   q0 P... kv [0, 1)
// MAP-NEXT:   q1 FP.. kv [0, 2)
// MAP-NEXT:   q2 FFP. kv [0, 3)
// MAP-NEXT:   q3 FFFP kv [0, 4)
// MAP-NEXT:   visited 10 of 16 tiles
// Nq != Nk and ragged last tiles (130 = 4*32 + 2, 260 = 4*64 + 4).
// ODD-LABEL: tile map of {{.*}} Nq=130 Nk=260 tile 32x64 kind index
// ODD-NEXT:   q0 P.... kv [0, 1)
// ODD-NEXT:   q1 P.... kv [0, 1)
// ODD-NEXT:   q2 FP... kv [0, 2)
// ODD-NEXT:   q3 FP... kv [0, 2)
// ODD-NEXT:   q4 FFP.. kv [0, 3)
// ODD-NEXT:   visited 9 of 25 tiles
// CHECK-LABEL: func.func @causal
// CHECK: mask_info = #attn.mask_info<kind = index, batch = false, head = false, from_score = false>
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

// Sliding window of 64: a band of partial tiles, nothing full.
// MAP-LABEL: tile map of {{.*}} kind index
// MAP-NEXT:   q0 P... kv [0, 1)
// MAP-NEXT:   q1 PP.. kv [0, 2)
// MAP-NEXT:   q2 .PP. kv [1, 3)
// MAP-NEXT:   q3 ..PP kv [2, 4)
// MAP-NEXT:   visited 7 of 16 tiles
// ODD-LABEL: tile map of {{.*}} kind index
// ODD-NEXT:   q0 P.... kv [0, 1)
// ODD-NEXT:   q1 P.... kv [0, 1)
// ODD-NEXT:   q2 PP... kv [0, 2)
// ODD-NEXT:   q3 PP... kv [0, 2)
// ODD-NEXT:   q4 .PP.. kv [1, 3)
// ODD-NEXT:   visited 8 of 25 tiles
// CHECK-LABEL: func.func @sliding_window
// CHECK: mask_info = #attn.mask_info<kind = index, batch = false, head = false, from_score = false>
func.func @sliding_window(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                          %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %w = arith.constant 64 : index
      %causal = arith.cmpi uge, %i, %j : index
      %d = arith.subi %i, %j : index
      %near = arith.cmpi slt, %d, %w : index
      %keep = arith.andi %causal, %near : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// Prefix-LM with a 64-token prefix: the first kv column is full.
// MAP-LABEL: tile map of {{.*}} kind index
// MAP-NEXT:   q0 F... kv [0, 1)
// MAP-NEXT:   q1 FP.. kv [0, 2)
// MAP-NEXT:   q2 FFP. kv [0, 3)
// MAP-NEXT:   q3 FFFP kv [0, 4)
// MAP-NEXT:   visited 10 of 16 tiles
// ODD-LABEL: tile map of {{.*}} kind index
// ODD-NEXT:   q0 F.... kv [0, 1)
// ODD-NEXT:   q1 F.... kv [0, 1)
// ODD-NEXT:   q2 FP... kv [0, 2)
// ODD-NEXT:   q3 FP... kv [0, 2)
// ODD-NEXT:   q4 FFP.. kv [0, 3)
// ODD-NEXT:   visited 9 of 25 tiles
// CHECK-LABEL: func.func @prefix_lm
// CHECK: mask_info = #attn.mask_info<kind = index, batch = false, head = false, from_score = false>
func.func @prefix_lm(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                     %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %p = arith.constant 64 : index
      %prefix = arith.cmpi ult, %j, %p : index
      %causal = arith.cmpi uge, %i, %j : index
      %keep = arith.ori %prefix, %causal : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// Dilated window (128 past keys, every second one): the rem makes no tile
// full, but tiles beyond the window are still never visited.
// MAP-LABEL: tile map of {{.*}} kind index
// MAP-NEXT:   q0 P... kv [0, 1)
// MAP-NEXT:   q1 PP.. kv [0, 2)
// MAP-NEXT:   q2 PPP. kv [0, 3)
// MAP-NEXT:   q3 .PPP kv [1, 4)
// MAP-NEXT:   visited 9 of 16 tiles
// ODD-LABEL: tile map of {{.*}} kind index
// ODD-NEXT:   q0 P.... kv [0, 1)
// ODD-NEXT:   q1 P.... kv [0, 1)
// ODD-NEXT:   q2 PP... kv [0, 2)
// ODD-NEXT:   q3 PP... kv [0, 2)
// ODD-NEXT:   q4 PPP.. kv [0, 3)
// ODD-NEXT:   visited 9 of 25 tiles
// CHECK-LABEL: func.func @dilated_window
// CHECK: mask_info = #attn.mask_info<kind = index, batch = false, head = false, from_score = false>
func.func @dilated_window(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                          %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %w = arith.constant 128 : index
      %c2 = arith.constant 2 : index
      %c0 = arith.constant 0 : index
      %causal = arith.cmpi uge, %i, %j : index
      %d = arith.subi %i, %j : index
      %near = arith.cmpi slt, %d, %w : index
      %r = arith.remsi %d, %c2 : index
      %even = arith.cmpi eq, %r, %c0 : index
      %a = arith.andi %causal, %near : i1
      %keep = arith.andi %a, %even : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// Chunked (block-local) causal attention in chunks of 128 written with div:
// tiles below the diagonal inside a chunk are full, tiles of earlier chunks
// are empty and skipped.
// MAP-LABEL: tile map of {{.*}} kind index
// MAP-NEXT:   q0 P... kv [0, 1)
// MAP-NEXT:   q1 FP.. kv [0, 2)
// MAP-NEXT:   q2 ..P. kv [2, 3)
// MAP-NEXT:   q3 ..FP kv [2, 4)
// MAP-NEXT:   visited 6 of 16 tiles
// ODD-LABEL: tile map of {{.*}} kind index
// ODD-NEXT:   q0 P.... kv [0, 1)
// ODD-NEXT:   q1 P.... kv [0, 1)
// ODD-NEXT:   q2 FP... kv [0, 2)
// ODD-NEXT:   q3 FP... kv [0, 2)
// ODD-NEXT:   q4 ..P.. kv [2, 3)
// ODD-NEXT:   visited 7 of 25 tiles
// CHECK-LABEL: func.func @chunked_causal
// CHECK: mask_info = #attn.mask_info<kind = index, batch = false, head = false, from_score = false>
func.func @chunked_causal(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                          %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.constant 128 : index
      %ci = arith.divui %i, %c : index
      %cj = arith.divui %j, %c : index
      %same = arith.cmpi eq, %ci, %cj : index
      %causal = arith.cmpi uge, %i, %j : index
      %m = arith.andi %same, %causal : i1
      attn.yield %m : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// 2D neighborhood (5x5 on a 16-wide grid): a 64-token tile is 4 grid rows,
// so only kv tiles at most one tile away can hold a neighbour.
// MAP-LABEL: tile map of {{.*}} kind index
// MAP-NEXT:   q0 PP.. kv [0, 2)
// MAP-NEXT:   q1 PPP. kv [0, 3)
// MAP-NEXT:   q2 .PPP kv [1, 4)
// MAP-NEXT:   q3 ..PP kv [2, 4)
// MAP-NEXT:   visited 10 of 16 tiles
// CHECK-LABEL: func.func @neighborhood_2d
// CHECK: mask_info = #attn.mask_info<kind = index, batch = false, head = false, from_score = false>
func.func @neighborhood_2d(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                           %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %w = arith.constant 16 : index
      %r = arith.constant 2 : index
      %ri = arith.divui %i, %w : index
      %ci = arith.remui %i, %w : index
      %rj = arith.divui %j, %w : index
      %cj = arith.remui %j, %w : index
      %dr = arith.subi %ri, %rj : index
      %dc = arith.subi %ci, %cj : index
      %adr = math.absi %dr : index
      %adc = math.absi %dc : index
      %okr = arith.cmpi sle, %adr, %r : index
      %okc = arith.cmpi sle, %adc, %r : index
      %keep = arith.andi %okr, %okc : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// Document mask: the document ids are data, so the tiles the causal part
// does not rule out are decided at run time (R).
// MAP-LABEL: tile map of {{.*}} kind data
// MAP-NEXT:   q0 R... kv [0, 1)
// MAP-NEXT:   q1 RR.. kv [0, 2)
// MAP-NEXT:   q2 RRR. kv [0, 3)
// MAP-NEXT:   q3 RRRR kv [0, 4)
// MAP-NEXT:   visited 10 of 16 tiles
// CHECK-LABEL: func.func @document_mask
// CHECK: mask_info = #attn.mask_info<kind = data, batch = false, head = false, from_score = false>
func.func @document_mask(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                         %v: tensor<?x4x?x64xf32>, %docs: tensor<?xi32>)
    -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v captures(%docs : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %di = tensor.extract %docs[%i] : tensor<?xi32>
      %dj = tensor.extract %docs[%j] : tensor<?xi32>
      %same = arith.cmpi eq, %di, %dj : i32
      %causal = arith.cmpi uge, %i, %j : index
      %keep = arith.andi %same, %causal : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// A score region yielding select(i >= j, s, -inf) is a causal mask.
// MAP-LABEL: tile map of {{.*}} kind index
// MAP-NEXT:   q0 P... kv [0, 1)
// MAP-NEXT:   q1 FP.. kv [0, 2)
// MAP-NEXT:   q2 FFP. kv [0, 3)
// MAP-NEXT:   q3 FFFP kv [0, 4)
// MAP-NEXT:   visited 10 of 16 tiles
// CHECK-LABEL: func.func @score_select
// CHECK: mask_info = #attn.mask_info<kind = index, batch = false, head = false, from_score = true>
func.func @score_select(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                        %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %ninf = arith.constant 0xFF800000 : f32
      %c = arith.cmpi uge, %i, %j : index
      %r = arith.select %c, %s, %ninf : f32
      attn.yield %r : f32
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// The -inf on the true side (select(i < j, -inf, s)) combined with a mask
// region (i - j < 64): together a sliding window.
// MAP-LABEL: tile map of {{.*}} kind index
// MAP-NEXT:   q0 P... kv [0, 1)
// MAP-NEXT:   q1 PP.. kv [0, 2)
// MAP-NEXT:   q2 .PP. kv [1, 3)
// MAP-NEXT:   q3 ..PP kv [2, 4)
// MAP-NEXT:   visited 7 of 16 tiles
// CHECK-LABEL: func.func @score_select_negated
// CHECK: mask_info = #attn.mask_info<kind = index, batch = false, head = false, from_score = true>
func.func @score_select_negated(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                                %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
      %ninf = arith.constant 0xFF800000 : f32
      %c = arith.cmpi ult, %i, %j : index
      %r = arith.select %c, %ninf, %s : f32
      attn.yield %r : f32
    }
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c64 = arith.constant 64 : index
      %d = arith.subi %i, %j : index
      %c = arith.cmpi slt, %d, %c64 : index
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// A window that grows with the head (i - j <= 64 h): head = true; the map is
// printed for h = 0 (the diagonal only).
// MAP-LABEL: tile map of {{.*}} (b=0 h=0) {{.*}} kind index
// MAP-NEXT:   q0 P... kv [0, 1)
// MAP-NEXT:   q1 .P.. kv [1, 2)
// MAP-NEXT:   q2 ..P. kv [2, 3)
// MAP-NEXT:   q3 ...P kv [3, 4)
// MAP-NEXT:   visited 4 of 16 tiles
// CHECK-LABEL: func.func @per_head_window
// CHECK: mask_info = #attn.mask_info<kind = index, batch = false, head = true, from_score = false>
func.func @per_head_window(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                           %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c64 = arith.constant 64 : index
      %w = arith.muli %h, %c64 : index
      %d = arith.subi %i, %j : index
      %near = arith.cmpi sle, %d, %w : index
      %causal = arith.cmpi sge, %i, %j : index
      %c = arith.andi %near, %causal : i1
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// An op the analysis does not model (bitwise and on indices): opaque; the
// causal part still rules out the upper tiles.
// MAP-LABEL: tile map of {{.*}} kind opaque
// MAP-NEXT:   q0 R... kv [0, 1)
// MAP-NEXT:   q1 RR.. kv [0, 2)
// MAP-NEXT:   q2 RRR. kv [0, 3)
// MAP-NEXT:   q3 RRRR kv [0, 4)
// MAP-NEXT:   visited 10 of 16 tiles
// CHECK-LABEL: func.func @opaque
// CHECK: mask_info = #attn.mask_info<kind = opaque, batch = false, head = false, from_score = false>
func.func @opaque(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                  %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c1 = arith.constant 1 : index
      %x = arith.xori %i, %j : index
      %y = arith.andi %x, %c1 : index
      %z = arith.cmpi eq, %y, %c1 : index
      %causal = arith.cmpi uge, %i, %j : index
      %c = arith.andi %z, %causal : i1
      attn.yield %c : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

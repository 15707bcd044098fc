// Masks on integer captures of every width (i1, i8, i16, i32, i64, index)
// lower to GPU kernels: compared with constants, addi'd, index_cast,
// combined with other predicates, document masks, block layouts read once
// per tile (issue 13, I1: an extsi to i32 was made whatever the width, and
// an i32 -> i32 extsi failed verification). attn-aot-int-captures.test
// assembles the kernels with ptxas.
// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule=target=sm_90a --convert-attn-to-gpu | FileCheck %s
// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule=target=sm_80 --convert-attn-to-gpu | FileCheck %s

// A block layout's value, read once per tile, becomes an index whatever its
// width.
// CHECK-LABEL: gpu.func @block_layout_i8_blockmap
// CHECK: %[[X8:.*]] = memref.load %{{.*}} : memref<?x?xi8>
// CHECK-NEXT: arith.index_cast %[[X8]] : i8 to index
// CHECK-LABEL: gpu.func @block_layout_i32_blockmap
// CHECK: %[[X32:.*]] = memref.load %{{.*}} : memref<?x?xi32>
// CHECK-NEXT: arith.index_cast %[[X32]] : i32 to index
// CHECK-LABEL: gpu.func @mixed_i8_i64_blockmap

func.func @const_i1(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi1>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi1>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.constant true
      %y = tensor.extract %t[%j] : tensor<?xi1>
      %keep = arith.cmpi eq, %y, %c : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @const_i8(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi8>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi8>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.constant 1 : i8
      %y = tensor.extract %t[%j] : tensor<?xi8>
      %keep = arith.cmpi eq, %y, %c : i8
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @const_i16(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi16>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.constant 1 : i16
      %y = tensor.extract %t[%j] : tensor<?xi16>
      %keep = arith.cmpi eq, %y, %c : i16
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @const_i32(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi32>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.constant 1 : i32
      %y = tensor.extract %t[%j] : tensor<?xi32>
      %keep = arith.cmpi eq, %y, %c : i32
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @const_i64(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi64>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi64>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.constant 1 : i64
      %y = tensor.extract %t[%j] : tensor<?xi64>
      %keep = arith.cmpi eq, %y, %c : i64
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @index_capture(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xindex>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xindex>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %y = tensor.extract %t[%j] : tensor<?xindex>
      %keep = arith.cmpi ule, %y, %i : index
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @addi_causal_i8(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi8>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi8>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c3 = arith.constant 3 : i8
      %y = tensor.extract %t[%j] : tensor<?xi8>
      %s = arith.addi %y, %c3 : i8
      %lt = arith.cmpi slt, %s, %c3 : i8
      %causal = arith.cmpi ule, %j, %i : index
      %keep = arith.andi %lt, %causal : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @addi_causal_i32(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi32>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c3 = arith.constant 3 : i32
      %y = tensor.extract %t[%j] : tensor<?xi32>
      %s = arith.addi %y, %c3 : i32
      %lt = arith.cmpi slt, %s, %c3 : i32
      %causal = arith.cmpi ule, %j, %i : index
      %keep = arith.andi %lt, %causal : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @addi_causal_i64(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi64>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi64>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c3 = arith.constant 3 : i64
      %y = tensor.extract %t[%j] : tensor<?xi64>
      %s = arith.addi %y, %c3 : i64
      %lt = arith.cmpi slt, %s, %c3 : i64
      %causal = arith.cmpi ule, %j, %i : index
      %keep = arith.andi %lt, %causal : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @index_cast_i8(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi8>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi8>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %y = tensor.extract %t[%j] : tensor<?xi8>
      %x = arith.index_cast %y : i8 to index
      %keep = arith.cmpi ule, %x, %i : index
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @index_cast_i16(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi16>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %y = tensor.extract %t[%j] : tensor<?xi16>
      %x = arith.index_cast %y : i16 to index
      %keep = arith.cmpi ule, %x, %i : index
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @index_cast_i32(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi32>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %y = tensor.extract %t[%j] : tensor<?xi32>
      %x = arith.index_cast %y : i32 to index
      %keep = arith.cmpi ule, %x, %i : index
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @index_cast_i64(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi64>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi64>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %y = tensor.extract %t[%j] : tensor<?xi64>
      %x = arith.index_cast %y : i64 to index
      %keep = arith.cmpi ule, %x, %i : index
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @document_i1(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi1>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi1>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %x = tensor.extract %t[%i] : tensor<?xi1>
      %y = tensor.extract %t[%j] : tensor<?xi1>
      %same = arith.cmpi eq, %x, %y : i1
      attn.yield %same : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @document_i8(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi8>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi8>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %x = tensor.extract %t[%i] : tensor<?xi8>
      %y = tensor.extract %t[%j] : tensor<?xi8>
      %same = arith.cmpi eq, %x, %y : i8
      %causal = arith.cmpi ule, %j, %i : index
      %keep = arith.andi %same, %causal : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @document_i32(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi32>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %x = tensor.extract %t[%i] : tensor<?xi32>
      %y = tensor.extract %t[%j] : tensor<?xi32>
      %same = arith.cmpi eq, %x, %y : i32
      %causal = arith.cmpi ule, %j, %i : index
      %keep = arith.andi %same, %causal : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @document_i64(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?xi64>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?xi64>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %x = tensor.extract %t[%i] : tensor<?xi64>
      %y = tensor.extract %t[%j] : tensor<?xi64>
      %same = arith.cmpi eq, %x, %y : i64
      %causal = arith.cmpi ule, %j, %i : index
      %keep = arith.andi %same, %causal : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @block_layout_i8(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?x?xi8>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?x?xi8>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c128 = arith.constant 128 : index
      %c0 = arith.constant 0 : i8
      %bi = arith.divui %i, %c128 : index
      %bj = arith.divui %j, %c128 : index
      %y = tensor.extract %t[%bi, %bj] : tensor<?x?xi8>
      %keep = arith.cmpi ne, %y, %c0 : i8
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @block_layout_i16(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?x?xi16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?x?xi16>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c128 = arith.constant 128 : index
      %c0 = arith.constant 0 : i16
      %bi = arith.divui %i, %c128 : index
      %bj = arith.divui %j, %c128 : index
      %y = tensor.extract %t[%bi, %bj] : tensor<?x?xi16>
      %keep = arith.cmpi ne, %y, %c0 : i16
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @block_layout_i32(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?x?xi32>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?x?xi32>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c128 = arith.constant 128 : index
      %c0 = arith.constant 0 : i32
      %bi = arith.divui %i, %c128 : index
      %bj = arith.divui %j, %c128 : index
      %y = tensor.extract %t[%bi, %bj] : tensor<?x?xi32>
      %keep = arith.cmpi ne, %y, %c0 : i32
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @block_layout_i64(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %t: tensor<?x?xi64>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%t : tensor<?x?xi64>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c128 = arith.constant 128 : index
      %c0 = arith.constant 0 : i64
      %bi = arith.divui %i, %c128 : index
      %bj = arith.divui %j, %c128 : index
      %y = tensor.extract %t[%bi, %bj] : tensor<?x?xi64>
      %keep = arith.cmpi ne, %y, %c0 : i64
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

func.func @mixed_i8_i64(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
    %v: tensor<?x4x?x64xbf16>, %s: tensor<?xi8>, %t: tensor<?xi64>) -> tensor<?x4x?x64xbf16> {
  %o = attn.attention %q, %k, %v captures(%s, %t : tensor<?xi8>, tensor<?xi64>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c1 = arith.constant 1 : i8
      %c7 = arith.constant 7 : i64
      %x = tensor.extract %s[%i] : tensor<?xi8>
      %y = tensor.extract %t[%j] : tensor<?xi64>
      %a = arith.cmpi sgt, %x, %c1 : i8
      %w = arith.extsi %x : i8 to i64
      %z = arith.addi %w, %y : i64
      %bb = arith.cmpi slt, %z, %c7 : i64
      %keep = arith.ori %a, %bb : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// The named CPU pipelines reach the LLVM dialect with nothing left over.
// RUN: attn-opt %s --attn-lower-cpu | FileCheck %s
// RUN: attn-opt %s --attn-lower-cpu-reference | FileCheck %s
// CHECK: llvm.func @sliding
// CHECK-NOT: attn.
// CHECK-NOT: scf.
// CHECK-NOT: memref.
// CHECK-NOT: vector.transfer
func.func @sliding(%q: tensor<?x4x?x32xbf16>, %k: tensor<?x4x?x32xbf16>,
                   %v: tensor<?x4x?x32xbf16>) -> tensor<?x4x?x32xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %w = arith.constant 16 : index
      %c = arith.cmpi uge, %i, %j : index
      %d = arith.subi %i, %j : index
      %n = arith.cmpi ult, %d, %w : index
      %m = arith.andi %c, %n : i1
      attn.yield %m : i1
    } : tensor<?x4x?x32xbf16>, tensor<?x4x?x32xbf16>, tensor<?x4x?x32xbf16>
      -> tensor<?x4x?x32xbf16>
  return %o : tensor<?x4x?x32xbf16>
}

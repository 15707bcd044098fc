// A spec whose types fix the batch and sequence lengths runs at those sizes
// and reports them; a flag asking for other sizes is refused.
// RUN: attn-run %s | FileCheck %s
// RUN: attn-run %s --nq 48 --batch 3 | FileCheck %s
// RUN: not attn-run %s --nq 300 2>&1 | FileCheck %s --check-prefix=NQ
// RUN: not attn-run %s --nk 20 2>&1 | FileCheck %s --check-prefix=NK
// RUN: not attn-run %s --batch 2 2>&1 | FileCheck %s --check-prefix=B
// RUN: sed 's/3x4x/0x4x/g' %s > %t.mlir
// RUN: not attn-run %t.mlir 2>&1 | FileCheck %s --check-prefix=ZERO
// RUN: attn-run %s --nk 0 | FileCheck %s

// CHECK: static: backend=cpu B=3 Nq=48 Nk=40
// CHECK: PASS
// NQ: error: the spec fixes nq = 48 in its types, but --nq 300 was given
// NK: error: the spec fixes nk = 40 in its types, but --nk 20 was given
// B: error: the spec fixes batch = 3 in its types, but --batch 2 was given
// ZERO: error: the spec fixes batch = 0; attn-run needs positive sizes
func.func @static(%q: tensor<3x4x48x64xf32>, %k: tensor<3x4x40x64xf32>,
                  %v: tensor<3x4x40x64xf32>) -> tensor<3x4x48x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %c = arith.cmpi uge, %i, %j : index
      attn.yield %c : i1
    } : tensor<3x4x48x64xf32>, tensor<3x4x40x64xf32>, tensor<3x4x40x64xf32>
      -> tensor<3x4x48x64xf32>
  return %o : tensor<3x4x48x64xf32>
}

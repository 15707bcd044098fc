// --attn-compile with format=bin assembles the kernel with ptxas.
// REQUIRES: ptxas
// RUN: attn-opt %s --attn-compile="target=sm_80 format=bin" | FileCheck %s
// CHECK: gpu.binary @full_kernels
// CHECK-SAME: chip = "sm_80"
// CHECK-SAME: bin = "\7FELF

func.func @full(%q: tensor<?x8x?x128xf16>, %k: tensor<?x8x?x128xf16>,
                %v: tensor<?x8x?x128xf16>) -> tensor<?x8x?x128xf16> {
  %o = attn.attention %q, %k, %v
    : tensor<?x8x?x128xf16>, tensor<?x8x?x128xf16>, tensor<?x8x?x128xf16>
      -> tensor<?x8x?x128xf16>
  return %o : tensor<?x8x?x128xf16>
}

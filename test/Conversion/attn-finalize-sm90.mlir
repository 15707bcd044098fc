// attn-finalize-sm90: TMA tensor maps become by-value __grid_constant__
// parameters and dynamic shared memory becomes an external, 1024-byte
// aligned array (docs/notes/sm90a-plan.md, 1.2 and 1.5).
// RUN: attn-opt %s --pass-pipeline="builtin.module(gpu.module(attn-finalize-sm90))" | FileCheck %s
// RUN: attn-opt %s --pass-pipeline="builtin.module(gpu.module(attn-finalize-sm90),gpu-module-to-binary{format=isa})" | FileCheck %s --check-prefix=PTX

// CHECK: llvm.mlir.global external @__dynamic_shmem__0() {addr_space = 3 : i32, alignment = 1024 : i64}
// CHECK: llvm.func @kern(%{{.*}}: !llvm.ptr {llvm.align = 64 : i64, llvm.byval = !llvm.array<16 x i64>, nvvm.grid_constant}, %{{.*}}: !llvm.ptr) attributes {nvvm.kernel}
// The map is read in place (cvta.param), not copied to local memory.
// PTX: .extern .shared .align 1024 .b8 __dynamic_shmem__0[];
// PTX: .param .align 64 .b8 kern_param_0[128]
// PTX-NOT: .local
// PTX: prefetch{{.*}}tensormap
module attributes {gpu.container_module} {
  gpu.module @k [#nvvm.target<chip = "sm_90a", features = "+ptx80">] {
    llvm.mlir.global internal @__dynamic_shmem__0() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>
    llvm.func @kern(%tmap: !llvm.ptr, %out: !llvm.ptr) attributes {nvvm.kernel, attn.tma_args = array<i32: 0>} {
      nvvm.prefetch tensormap, %tmap : !llvm.ptr
      %s = llvm.mlir.addressof @__dynamic_shmem__0 : !llvm.ptr<3>
      %v = llvm.load %s : !llvm.ptr<3> -> i32
      llvm.store %v, %out : i32, !llvm.ptr
      llvm.return
    }
  }
}

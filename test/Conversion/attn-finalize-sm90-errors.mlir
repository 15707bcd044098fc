// attn-finalize-sm90 rejects tensor-map arguments it cannot pass by value.
// RUN: attn-opt %s --split-input-file --pass-pipeline="builtin.module(gpu.module(attn-finalize-sm90))" -verify-diagnostics -o /dev/null


module attributes {gpu.container_module} {
  gpu.module @k [#nvvm.target<chip = "sm_90a", features = "+ptx80">] {
    // expected-error @+1 {{attn.tma_args names argument 1, which is not a pointer argument}}
    llvm.func @kern(%p: !llvm.ptr, %n: i64) attributes {nvvm.kernel, attn.tma_args = array<i32: 1>} {
      llvm.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @k [#nvvm.target<chip = "sm_90a", features = "+ptx80">] {
    // expected-error @+1 {{attn.tma_args on a function that is not a kernel}}
    llvm.func @helper(%p: !llvm.ptr) attributes {attn.tma_args = array<i32: 0>} {
      llvm.return
    }
  }
}

// attn-finalize-sm90 rejects tensor-map arguments it cannot pass by value and
// inline PTX that LLVM would reject with a fatal error.
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

// -----

// Inline PTX that LLVM's code generator would reject with a fatal error
// (constraint 'n' expects an integer constant expression): convert-nvvm-to-llvm
// passes an operand defined by llvm.mlir.constant as an immediate ('n').
module attributes {gpu.container_module} {
  gpu.module @k [#nvvm.target<chip = "sm_80">] {
    llvm.func @tanh_of_constant() -> f32 {
      %c = llvm.mlir.constant(5.000000e-01 : f32) : f32
      // expected-error @+1 {{'nvvm.inline_ptx' op inline PTX `tanh.approx.f32 $0, $1;`: operand 0 is a constant 'f32', which the PTX builder passes as an immediate ('n'), an integer only}}
      %r = nvvm.inline_ptx "tanh.approx.f32 $0, $1;" ro(%c : f32) -> f32
      llvm.return %r : f32
    }
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @k [#nvvm.target<chip = "sm_80">] {
    llvm.func @immediate_not_constant(%a: i32, %b: i32) -> i32 {
      // expected-error @+1 {{'llvm.inline_asm' op `add.s32 $0, $1, $2;`: operand 1 has the immediate constraint 'n' but is not an integer constant}}
      %r = llvm.inline_asm "add.s32 $0, $1, $2;", "=r,r,n" %a, %b : (i32, i32) -> i32
      llvm.return %r : i32
    }
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @k [#nvvm.target<chip = "sm_80">] {
    llvm.func @no_register_type(%a: vector<2xf16>) -> vector<2xf16> {
      // expected-error @+1 {{'nvvm.inline_ptx' op inline PTX `mov.b32 $0, $1;`: no PTX register type for 'vector<2xf16>'}}
      %r = nvvm.inline_ptx "mov.b32 $0, $1;" ro(%a : vector<2xf16>) -> vector<2xf16>
      llvm.return %r : vector<2xf16>
    }
  }
}

// -----

// Accepted: integer constants as immediates, constants of any type under a
// register constraint (what the attention kernels' tanh and ex2 are).
module attributes {gpu.container_module} {
  gpu.module @k [#nvvm.target<chip = "sm_80">] {
    llvm.func @fine(%a: i32, %x: f32) -> f32 {
      %c = llvm.mlir.constant(3 : i32) : i32
      %h = llvm.mlir.constant(0.000000e+00 : f32) : f32
      %s = nvvm.inline_ptx "add.s32 $0, $1, $2;" ro(%a, %c : i32, i32) -> i32
      %t = llvm.inline_asm "add.s32 $0, $1, $2;", "=r,r,n" %s, %c : (i32, i32) -> i32
      %u = llvm.inline_asm has_side_effects asm_dialect = att "tanh.approx.f32 $0, $1;", "=f,f" %h : (f32) -> f32
      %v = nvvm.inline_ptx "ex2.approx.ftz.f32 $0, $1;" ro(%x : f32) -> f32
      %w = llvm.fadd %u, %v : f32
      llvm.return %w : f32
    }
  }
}

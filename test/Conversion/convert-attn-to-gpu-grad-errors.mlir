// What the backward kernels do not support is an error naming it.
// RUN: attn-opt %s --split-input-file --verify-diagnostics --convert-attn-to-gpu -o /dev/null

func.func @unscheduled(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>, %v: tensor<?x4x?x64xbf16>, %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %do: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>) {
  // expected-error @+1 {{needs a GPU #attn.schedule (sm_80 or sm_90a) for GPU code generation}}
  %dq, %dk, %dv = attn.attention_grad %q, %k, %v, %o, %lse, %do : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
  return %dq, %dk, %dv : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
}

// -----

func.func @f32_inputs(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>, %v: tensor<?x4x?x64xf32>, %o: tensor<?x4x?x64xf32>, %lse: tensor<?x4x?xf32>, %do: tensor<?x4x?x64xf32>) -> (tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>) {
  // expected-error @+1 {{GPU backward kernels take bf16 or f16 inputs, got 'f32'}}
  %dq, %dk, %dv = attn.attention_grad %q, %k, %v, %o, %lse, %do {schedule = #attn.schedule<target = "sm_80", block_q = 64, block_kv = 64, warps = 4, stages = 1, smem_bytes = 0>} : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
  return %dq, %dk, %dv : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
}

// -----

func.func @head_dim(%q: tensor<?x4x?x40xbf16>, %k: tensor<?x4x?x40xbf16>, %v: tensor<?x4x?x40xbf16>, %o: tensor<?x4x?x40xbf16>, %lse: tensor<?x4x?xf32>, %do: tensor<?x4x?x40xbf16>) -> (tensor<?x4x?x40xbf16>, tensor<?x4x?x40xbf16>, tensor<?x4x?x40xbf16>) {
  // expected-error @+1 {{GPU backward kernels need head dims that are multiples of 16 and at most 256, got 40 and 40}}
  %dq, %dk, %dv = attn.attention_grad %q, %k, %v, %o, %lse, %do {schedule = #attn.schedule<target = "sm_80", block_q = 64, block_kv = 64, warps = 4, stages = 1, smem_bytes = 0>} : tensor<?x4x?x40xbf16>, tensor<?x4x?x40xbf16>, tensor<?x4x?x40xbf16>, tensor<?x4x?x40xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x40xbf16> -> tensor<?x4x?x40xbf16>, tensor<?x4x?x40xbf16>, tensor<?x4x?x40xbf16>
  return %dq, %dk, %dv : tensor<?x4x?x40xbf16>, tensor<?x4x?x40xbf16>, tensor<?x4x?x40xbf16>
}

// -----

func.func @tiles(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>, %v: tensor<?x4x?x64xbf16>, %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %do: tensor<?x4x?x64xbf16>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>) {
  // expected-error @+1 {{GPU backward schedule needs block_q and block_kv in {16, 32, ..., 128}, got 64x256}}
  %dq, %dk, %dv = attn.attention_grad %q, %k, %v, %o, %lse, %do {schedule = #attn.schedule<target = "sm_80", block_q = 64, block_kv = 256, warps = 4, stages = 1, smem_bytes = 0>} : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16> -> tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
  return %dq, %dk, %dv : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
}

// -----

func.func @dlse(%q: tensor<?x4x?x64xbf16>, %o: tensor<?x4x?x64xbf16>, %lse: tensor<?x4x?xf32>, %dlse: tensor<?x4x?xf32>) -> (tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>) {
  // expected-error @+1 {{has a dLSE operand: the GPU backward kernels take the gradient of o only (a loss reading lse runs on the CPU backward)}}
  %dq, %dk, %dv = attn.attention_grad %q, %q, %q, %o, %lse, %o, %dlse {schedule = #attn.schedule<target = "sm_80", block_q = 64, block_kv = 64, warps = 4, stages = 1, smem_bytes = 0>} : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?xf32>, tensor<?x4x?x64xbf16>, tensor<?x4x?xf32> -> tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
  return %dq, %dk, %dv : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
}

// -----

// The backward of linear attention and scans has no GPU kernels yet.
func.func @linear_grad(%q: tensor<2x4x64x64xbf16>, %do: tensor<2x4x64x64xbf16>)
    -> (tensor<2x4x64x64xbf16>, tensor<2x4x64x64xbf16>,
        tensor<2x4x64x64xbf16>) {
  // expected-error @+1 {{'attn.linear_attention_grad' op has no GPU kernels yet: the backward of linear attention and scans runs on the CPU (the reference lowering)}}
  %dq, %dk, %dv = attn.linear_attention_grad causal %q, %q, %q, %do
    : tensor<2x4x64x64xbf16>, tensor<2x4x64x64xbf16>, tensor<2x4x64x64xbf16>,
      tensor<2x4x64x64xbf16>
    -> tensor<2x4x64x64xbf16>, tensor<2x4x64x64xbf16>, tensor<2x4x64x64xbf16>
  return %dq, %dk, %dv
      : tensor<2x4x64x64xbf16>, tensor<2x4x64x64xbf16>, tensor<2x4x64x64xbf16>
}

// -----

// The delta rule has no GPU kernels yet.
func.func @delta_rule(%q: tensor<2x4x64x64xbf16>, %beta: tensor<2x4x64xbf16>)
    -> tensor<2x4x64x64xbf16> {
  // expected-error @+1 {{'attn.delta_rule' op has no GPU kernels yet: the delta rule and its backward run on the CPU (target cpu)}}
  %o = attn.delta_rule %q, %q, %q, %beta
    : tensor<2x4x64x64xbf16>, tensor<2x4x64x64xbf16>, tensor<2x4x64x64xbf16>,
      tensor<2x4x64xbf16> -> tensor<2x4x64x64xbf16>
  return %o : tensor<2x4x64x64xbf16>
}

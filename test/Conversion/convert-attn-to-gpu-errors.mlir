// What convert-attn-to-gpu does not support is an error naming it, never a
// wrong kernel. The schedules are written out (attn-select-schedule keeps a
// user's schedule), so that each limit is reached.
// RUN: attn-opt %s --split-input-file --verify-diagnostics --attn-analyze-masks --convert-attn-to-gpu -o /dev/null

func.func @unscheduled(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                       %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  // expected-error @+1 {{needs #attn.schedule and #attn.mask_info before GPU code generation (run attn-analyze-masks and attn-select-schedule)}}
  %o = attn.attention %q, %k, %v
    : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

func.func @cpu_schedule(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                        %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  // expected-error @+1 {{has a CPU schedule; select a GPU target (sm_80 or sm_90a) for GPU code generation}}
  %o = attn.attention %q, %k, %v
    {schedule = #attn.schedule<target = "cpu", block_q = 64, block_kv = 64, warps = 1, stages = 1, smem_bytes = 0>}
    : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

func.func @f32_inputs(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                      %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  // expected-error @+1 {{GPU kernels take bf16 or f16 inputs, got 'f32'}}
  %o = attn.attention %q, %k, %v
    {schedule = #attn.schedule<target = "sm_80", block_q = 64, block_kv = 64, warps = 4, stages = 1, smem_bytes = 0>}
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

func.func @head_dim_24(%q: tensor<?x4x?x24xbf16>, %k: tensor<?x4x?x24xbf16>,
                       %v: tensor<?x4x?x24xbf16>) -> tensor<?x4x?x24xbf16> {
  // expected-error @+1 {{GPU kernels need head dims that are multiples of 16 and at most 256, got 24 and 24}}
  %o = attn.attention %q, %k, %v
    {schedule = #attn.schedule<target = "sm_80", block_q = 64, block_kv = 64, warps = 4, stages = 1, smem_bytes = 0>}
    : tensor<?x4x?x24xbf16>, tensor<?x4x?x24xbf16>, tensor<?x4x?x24xbf16>
      -> tensor<?x4x?x24xbf16>
  return %o : tensor<?x4x?x24xbf16>
}

// -----

func.func @block_q_8(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                     %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  // expected-error @+1 {{GPU schedule needs block_q in {16, ..., 128} and block_kv a multiple of 16, got 8x64}}
  %o = attn.attention %q, %k, %v
    {schedule = #attn.schedule<target = "sm_80", block_q = 8, block_kv = 64, warps = 1, stages = 1, smem_bytes = 0>}
    : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

func.func @block_q_256(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                       %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  // expected-error @+1 {{GPU schedule needs block_q in {16, ..., 128} and block_kv a multiple of 16, got 256x64}}
  %o = attn.attention %q, %k, %v
    {schedule = #attn.schedule<target = "sm_80", block_q = 256, block_kv = 64, warps = 16, stages = 1, smem_bytes = 0>}
    : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

// K and V tiles of 128 keys at head dim 128 (padded rows of 136 elements):
// 2 x 128 x 136 x 2 bytes, past the 48 KB of static shared memory.
func.func @shared_memory(%q: tensor<?x4x?x128xbf16>, %k: tensor<?x4x?x128xbf16>,
                         %v: tensor<?x4x?x128xbf16>) -> tensor<?x4x?x128xbf16> {
  // expected-error @+1 {{the mma.sync kernel's 128-row tiles of K and V need 69632 bytes of shared memory, past the 49152 (48 KB) of static shared memory a block may use: use a smaller block_kv}}
  %o = attn.attention %q, %k, %v
    {schedule = #attn.schedule<target = "sm_80", block_q = 64, block_kv = 128, warps = 4, stages = 1, smem_bytes = 0>}
    : tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16>
      -> tensor<?x4x?x128xbf16>
  return %o : tensor<?x4x?x128xbf16>
}

// What convert-attn-linear-to-gpu does not support is an error naming it,
// never a wrong kernel.
// RUN: attn-opt %s --split-input-file --verify-diagnostics --attn-select-schedule=target=sm_80 --convert-attn-linear-to-gpu
// RUN: not attn-opt %s --split-input-file --convert-attn-linear-to-gpu 2>&1 | FileCheck %s --check-prefix=NOSCHED
// RUN: not attn-opt %s --split-input-file --attn-select-schedule=target=sm_80 --convert-attn-linear-to-gpu=dv-slice=16 2>&1 | FileCheck %s --check-prefix=SLICE

// NOSCHED: needs #attn.schedule before GPU code generation
// SLICE: GPU dv-slice must be 32 or 64, got 16

func.func @f32_inputs(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                      %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  // expected-error @+1 {{GPU kernels take bf16 or f16 inputs, got 'f32'}}
  %o = attn.scan causal %q, %k, %v
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

func.func @head_dim_32(%q: tensor<?x4x?x32xbf16>, %k: tensor<?x4x?x32xbf16>,
                       %v: tensor<?x4x?x32xbf16>) -> tensor<?x4x?x32xbf16> {
  // expected-error @+1 {{GPU linear-attention kernels need head dims 64 or 128, got 32 and 32}}
  %o = attn.scan causal %q, %k, %v
    : tensor<?x4x?x32xbf16>, tensor<?x4x?x32xbf16>, tensor<?x4x?x32xbf16>
      -> tensor<?x4x?x32xbf16>
  return %o : tensor<?x4x?x32xbf16>
}

// -----

func.func @gla(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
               %v: tensor<?x4x?x64xbf16>, %g: tensor<?x4x?x64xf32>)
    -> tensor<?x4x?x64xbf16> {
  // expected-error @+1 {{bidirectional per-token, per-feature decay (GLA) is not supported on GPU}}
  %o = attn.linear_attention bidirectional %q, %k, %v decay(%g : tensor<?x4x?x64xf32>)
    : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

// Feature maps run in a feature kernel before the chunked kernel, whose
// feature dim must be 64 or 128.
func.func @feature_dim_32(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                          %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  // expected-error @+1 {{GPU linear-attention kernels need a feature dim and a value dim of 64 or 128, got 32 and 64}}
  %o = attn.linear_attention causal %q, %k, %v
    feature_map(%x: vector<64xf32>) {
      %r = vector.shuffle %x, %x [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
        31] : vector<64xf32>, vector<64xf32>
      attn.yield %r : vector<32xf32>
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
// -----

// An op the feature kernel does not evaluate.
func.func @unsupported_op(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                          %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  // expected-error @+1 {{feature map op 'vector.extract_strided_slice' cannot run on GPU: not supported in feature maps on GPU}}
  %o = attn.linear_attention causal %q, %k, %v
    feature_map(%x: vector<64xf32>) {
      %h = vector.extract_strided_slice %x {offsets = [0], sizes = [32], strides = [1]}
        : vector<64xf32> to vector<32xf32>
      %r = vector.shuffle %h, %h [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
        31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
        49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63]
        : vector<32xf32>, vector<32xf32>
      attn.yield %r : vector<64xf32>
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
// -----

// Captures must have a static shape (they are read at fixed offsets).
func.func @dynamic_capture(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                           %v: tensor<?x4x?x64xbf16>, %w: tensor<?xf32>)
    -> tensor<?x4x?x64xbf16> {
  // expected-error @+1 {{feature map op 'vector.transfer_read' cannot run on GPU: transfer_read of other than a static-shaped float capture with a minor identity map and no mask}}
  %o = attn.linear_attention causal %q, %k, %v captures(%w : tensor<?xf32>)
    feature_map(%x: vector<64xf32>) {
      %c0 = arith.constant 0 : index
      %pad = arith.constant 0.0 : f32
      %wv = vector.transfer_read %w[%c0], %pad {in_bounds = [false]}
        : tensor<?xf32>, vector<64xf32>
      %r = arith.mulf %x, %wv : vector<64xf32>
      attn.yield %r : vector<64xf32>
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
// -----

// Token orders are supported (convert-attn-linear-to-gpu-order.mlir); the
// op's other limits still apply with one.
func.func @token_order_gla_bidirectional(%q: tensor<?x2x?x64xbf16>, %k: tensor<?x2x?x64xbf16>,
                       %v: tensor<?x2x?x64xbf16>, %g: tensor<?x2x?x64xf32>) -> tensor<?x2x?x64xbf16> {
  // expected-error @+1 {{bidirectional per-token, per-feature decay (GLA) is not supported on GPU}}
  %o = attn.scan bidirectional %q, %k, %v decay(%g : tensor<?x2x?x64xf32>)
    {order = #attn.token_order<grid = [2, 3, 4], perm = [2, 0, 1], review = 2>}
    : tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
      -> tensor<?x2x?x64xbf16>
  return %o : tensor<?x2x?x64xbf16>
}
// -----

// A schedule written for the CPU is kept by attn-select-schedule.
func.func @cpu_schedule(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                        %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  // expected-error @+1 {{has a CPU schedule; select a GPU target (sm_80 or sm_90a) for GPU code generation}}
  %o = attn.scan causal %q, %k, %v
    {schedule = #attn.schedule<target = "cpu", block_q = 16, block_kv = 16, warps = 1, stages = 1, smem_bytes = 0>}
    : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}
// -----

// The feature kernel reads rows of q and k of at most 256 elements, even when
// the feature dim it writes is supported.
func.func @feature_head_dim_512(%q: tensor<?x4x?x512xbf16>, %k: tensor<?x4x?x512xbf16>,
                                %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  // expected-error @+1 {{GPU feature kernels read head dims up to 256, got 512}}
  %o = attn.linear_attention causal %q, %k, %v
    feature_map(%x: vector<512xf32>) {
      %r = vector.shuffle %x, %x [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
        31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
        49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63]
        : vector<512xf32>, vector<512xf32>
      attn.yield %r : vector<64xf32>
    } : tensor<?x4x?x512xbf16>, tensor<?x4x?x512xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// convert-attn-linear-to-gpu with GLA's per-token, per-feature log-gates
// (decay [B, H, N, F]) and the measured dv-slice defaults.
// RUN: attn-opt %s --attn-select-schedule=target=sm_80 --convert-attn-linear-to-gpu --split-input-file | FileCheck %s
// RUN: attn-opt %s --attn-select-schedule=target=sm_80 --convert-attn-linear-to-gpu=dv-slice=32 --split-input-file | FileCheck %s --check-prefix=DS32
// RUN: attn-opt %s --attn-compile=target=sm_80 --split-input-file | FileCheck %s --check-prefix=PTX

// GLA, bf16, D = Dv = 64: the f32 gate tile is staged with cp.async
// (4 floats per copy) beside Q, K, V; one thread per feature turns it into
// cumulative log2-gates; the Q and K tiles are scaled by exp2(L) and
// exp2(min(-L, 126)); the state rows by exp2(L_last). Default dv-slice 64;
// shared memory 65024 + 2 * 64 * 64 * 4.
// CHECK-LABEL: func.func @gla
// CHECK: gpu.func @gla(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xbf16>, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index)
// CHECK-SAME: {\22elem\22: \22f32\22, \22kind\22: \22memref_f32\22, \22name\22: \22decay\22, \22rank\22: 1}
// CHECK-SAME: {\22elem\22: \22\22, \22kind\22: \22i64\22, \22name\22: \22g_stride_b\22, \22rank\22: 0}, {\22elem\22: \22\22, \22kind\22: \22i64\22, \22name\22: \22g_stride_h\22, \22rank\22: 0}, {\22elem\22: \22\22, \22kind\22: \22i64\22, \22name\22: \22g_stride_n\22, \22rank\22: 0}]
// CHECK-SAME: \22decay\22: \22token_dim\22
// CHECK-SAME: \22dv_slice\22: 64, \22dynamic_smem\22: 97792, \22grid\22: [1, \22H\22, \22B\22]
// CHECK: nvgpu.device_async_copy {{.*}} : memref<?xf32> to memref<2x64x64xf32, #gpu.address_space<workgroup>>
// CHECK: scf.for
// CHECK: nvvm.cp.async.wait.group 1
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> (f32)
// CHECK-COUNT-8: memref.load {{.*}} : memref<2x64x64xf32, #gpu.address_space<workgroup>>
// CHECK: arith.constant 1.44269
// CHECK: gpu.barrier
// CHECK: arith.minimumf
// CHECK: ex2.approx.ftz.f32
// CHECK: nvvm.mma.sync
// DS32-LABEL: func.func @gla
// DS32: \22dv_slice\22: 32, \22dynamic_smem\22: 85504, \22grid\22: [2, \22H\22, \22B\22]
// PTX: .visible .entry gla(
// PTX-SAME: cp.async.cg.shared.global
// PTX-SAME: min.NaN.f32
// PTX-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
func.func @gla(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
               %v: tensor<?x4x?x64xbf16>, %g: tensor<?x4x?x64xf32>)
    -> tensor<?x4x?x64xbf16> {
  %o = attn.linear_attention causal %q, %k, %v decay(%g : tensor<?x4x?x64xf32>)
    scale = 0.125
    : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

// Causal per-token scalar gates ([B, H, N]): default dv-slice 32 (faster
// on the H100, docs/linear-gpu.md).
// CHECK-LABEL: func.func @sgla
// CHECK: \22decay\22: \22token\22
// CHECK-SAME: \22dv_slice\22: 32, \22dynamic_smem\22: 90624, \22grid\22: [4, \22H\22, \22B\22]
// DS32-LABEL: func.func @sgla
// DS32: \22dv_slice\22: 32
func.func @sgla(%q: tensor<?x16x?x128xbf16>, %k: tensor<?x16x?x128xbf16>,
                %v: tensor<?x16x?x128xbf16>, %g: tensor<?x16x?xf32>)
    -> tensor<?x16x?x128xbf16> {
  %o = attn.linear_attention causal %q, %k, %v decay(%g : tensor<?x16x?xf32>)
    scale = 0.088388
    : tensor<?x16x?x128xbf16>, tensor<?x16x?x128xbf16>, tensor<?x16x?x128xbf16>
      -> tensor<?x16x?x128xbf16>
  return %o : tensor<?x16x?x128xbf16>
}

// -----

// A bidirectional scan with per-token gates keeps 64 (1.002 ms against
// 1.138 with 32 on the H100); so does GLA at D = 128 (172544 bytes of
// shared memory: H100, not A100, with 64).
// CHECK-LABEL: func.func @bimamba
// CHECK: gpu.func @bimamba(
// CHECK-SAME: \22dv_slice\22: 64, \22dynamic_smem\22: 107008, \22grid\22: [2, \22H\22, \22B\22]
// CHECK: gpu.func @gla128(
// CHECK-SAME: \22dv_slice\22: 64, \22dynamic_smem\22: 172544, \22grid\22: [2, \22H\22, \22B\22]
func.func @bimamba(%q: tensor<?x16x?x128xbf16>, %k: tensor<?x16x?x128xbf16>,
                   %v: tensor<?x16x?x128xbf16>, %g: tensor<?x16x?xf32>)
    -> tensor<?x16x?x128xbf16> {
  %o = attn.scan bidirectional %q, %k, %v decay(%g : tensor<?x16x?xf32>)
    : tensor<?x16x?x128xbf16>, tensor<?x16x?x128xbf16>, tensor<?x16x?x128xbf16>
      -> tensor<?x16x?x128xbf16>
  return %o : tensor<?x16x?x128xbf16>
}
func.func @gla128(%q: tensor<?x16x?x128xbf16>, %k: tensor<?x16x?x128xbf16>,
                  %v: tensor<?x16x?x128xbf16>, %g: tensor<?x16x?x128xf32>)
    -> tensor<?x16x?x128xbf16> {
  %o = attn.linear_attention causal %q, %k, %v decay(%g : tensor<?x16x?x128xf32>)
    : tensor<?x16x?x128xbf16>, tensor<?x16x?x128xbf16>, tensor<?x16x?x128xbf16>
      -> tensor<?x16x?x128xbf16>
  return %o : tensor<?x16x?x128xbf16>
}

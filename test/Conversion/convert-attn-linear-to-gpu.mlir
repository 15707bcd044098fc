// convert-attn-linear-to-gpu: a chunked tensor-core kernel per linear op.
// RUN: attn-opt %s --attn-select-schedule=target=sm_80 --convert-attn-linear-to-gpu --split-input-file | FileCheck %s
// RUN: attn-opt %s --attn-select-schedule=target=sm_80 --convert-attn-linear-to-gpu=dv-slice=32 --split-input-file | FileCheck %s --check-prefix=DS32
// RUN: attn-opt %s --attn-select-schedule=target=sm_80 --convert-attn-linear-to-gpu=dv-slice=64 --split-input-file | FileCheck %s --check-prefix=DS64
// RUN: attn-opt %s --attn-compile=target=sm_80 --split-input-file | FileCheck %s --check-prefix=PTX

// RetNet-style per-head decay, bf16, D = Dv = 64.
// CHECK-LABEL: func.func @retnet
// CHECK: attn.linear_attention causal {{.*}} {attn.gpu_kernel = "retnet"
// CHECK: gpu.module @retnet_kernels
// CHECK: gpu.func @retnet(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xbf16>, %{{.*}}: index
// CHECK-SAME: kernel
// CHECK-SAME: attn.abi = #attn.kernel_abi<"{\22abi\22: {\22D\22: 64, \22Dv\22: 64, \22F\22: 64, \22H\22: 4, \22Hkv\22: 4, \22args\22: [{\22elem\22: \22bf16\22, \22kind\22: \22memref\22, \22name\22: \22q\22, \22rank\22: 1}
// CHECK-SAME: \22block\22: [128, 1, 1], \22causal\22: true, \22chunk\22: 64, \22decay\22: \22head\22, \22dtype\22: \22bf16\22, \22dv_slice\22: 64, \22dynamic_smem\22: 65024, \22grid\22: [1, \22H\22, \22B\22], \22kernel\22: \22retnet\22
// CHECK: gpu.dynamic_shared_memory
// CHECK: nvgpu.device_async_copy
// CHECK: nvvm.cp.async.commit.group
// CHECK: scf.for
// CHECK: nvvm.cp.async.wait.group 1
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false}
// CHECK: nvvm.mma.sync
// CHECK-SAME: layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>
// CHECK-SAME: multiplicandAPtxType = #nvvm.mma_type<bf16>
// CHECK-SAME: shape = #nvvm.shape<m = 16, n = 8, k = 16>
// CHECK: ex2.approx.ftz.f32
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = true}
// DS32-LABEL: func.func @retnet
// DS32: \22grid\22: [2, \22H\22, \22B\22]
// PTX: gpu.binary @retnet_kernels
// PTX-SAME: .extern .shared .align 1024 .b8 __dynamic_shmem__0[];
// PTX-SAME: .visible .entry retnet(
// PTX-SAME: cp.async.cg.shared.global
// PTX-SAME: ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16
// PTX-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
func.func @retnet(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                  %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %g = arith.constant dense<[-0.03, -0.015, -0.008, -0.004]> : tensor<4xf32>
  %o = attn.linear_attention causal %q, %k, %v decay(%g : tensor<4xf32>)
    scale = 0.125
    : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

// A scan with per-token gates, an initial and a final state, f16, GQA 8:2,
// D = Dv = 128: the gate strides follow the stride arguments; the states
// are f32 memrefs. Causal per-token gates: default dv-slice 32 (an explicit
// dv-slice=64 wins).
// CHECK-LABEL: func.func @ssd
// CHECK: gpu.func @ssd(%{{.*}}: memref<?xf16>, %{{.*}}: memref<?xf16>, %{{.*}}: memref<?xf16>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf32>, %{{.*}}: memref<?xf16>, %{{.*}}: memref<?xf32>, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index)
// CHECK-SAME: \22Hkv\22: 2
// CHECK-SAME: \22decay\22: \22token\22
// CHECK-SAME: \22dv_slice\22: 32, \22dynamic_smem\22: 90624, \22grid\22: [4, \22H\22, \22B\22]
// CHECK: gpu.shuffle up
// CHECK: nvvm.mma.sync {{.*}} : (vector<2xf16>, vector<2xf16>, f32)
// DS64-LABEL: func.func @ssd
// DS64: \22dv_slice\22: 64, \22dynamic_smem\22: 107008, \22grid\22: [2, \22H\22, \22B\22]
// PTX: .visible .entry ssd(
// PTX-SAME: mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
func.func @ssd(%q: tensor<?x8x?x128xf16>, %k: tensor<?x2x?x128xf16>,
               %v: tensor<?x2x?x128xf16>, %g: tensor<?x8x?xf32>,
               %s0: tensor<?x8x128x128xf32>)
    -> (tensor<?x8x?x128xf16>, tensor<?x8x128x128xf32>) {
  %o, %s = attn.scan causal %q, %k, %v decay(%g : tensor<?x8x?xf32>)
    initial_state(%s0 : tensor<?x8x128x128xf32>)
    : tensor<?x8x?x128xf16>, tensor<?x2x?x128xf16>, tensor<?x2x?x128xf16>
      -> tensor<?x8x?x128xf16>, tensor<?x8x128x128xf32>
  return %o, %s : tensor<?x8x?x128xf16>, tensor<?x8x128x128xf32>
}

// -----

// elu(x) + 1 with the normalizer: the feature map applied element by
// element in shared memory; V gets a column of ones (one more n-tile).
// CHECK-LABEL: func.func @elu
// CHECK: gpu.func @elu
// CHECK-SAME: \22normalize\22: true
// CHECK: math.exp {{.*}} : f32
// CHECK: arith.cmpf ogt, {{.*}} : f32
// CHECK: gpu.shuffle idx
func.func @elu(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
               %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.linear_attention causal %q, %k, %v normalize
    feature_map(%x: vector<64xf32>) {
      %zero = arith.constant dense<0.0> : vector<64xf32>
      %one = arith.constant dense<1.0> : vector<64xf32>
      %e = math.exp %x : vector<64xf32>
      %pos = arith.cmpf ogt, %x, %zero : vector<64xf32>
      %xp1 = arith.addf %x, %one : vector<64xf32>
      %r = arith.select %pos, %xp1, %e : vector<64xi1>, vector<64xf32>
      attn.yield %r : vector<64xf32>
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

// Bidirectional with normalize (examples/relu_squared.mlir): the caller's f32
// scratch after o; the forward sweep stores its numerators (f32 pairs) and,
// from lane t4 == 0, its denominator there; the backward sweep reads both
// back, adds its own, divides and writes o.
// CHECK-LABEL: func.func @relu_squared
// CHECK: gpu.func @relu_squared(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %[[SCR:.*]]: memref<?xf32>, %{{.*}}: index
// CHECK-SAME: {\22elem\22: \22f32\22, \22kind\22: \22memref_f32\22, \22name\22: \22scratch\22, \22rank\22: 1}
// CHECK-SAME: \22causal\22: false
// CHECK-SAME: \22normalize\22: true, \22scale\22: 1, \22scratch\22: {\22dtype\22: \22f32\22, \22elements\22: \22B * 4 * N * 65\22, \22name\22: \22scratch\22}
// CHECK: gpu.shuffle idx
// CHECK: memref.store %{{.*}}, %[[SCR]][%{{.*}}] : memref<?xf32>
// CHECK: vector.store %{{.*}}, %[[SCR]][%{{.*}}] : memref<?xf32>, vector<2xf32>
// CHECK: gpu.shuffle idx
// CHECK: %[[DF:.*]] = memref.load %[[SCR]][%{{.*}}] : memref<?xf32>
// CHECK: %[[DEN:.*]] = arith.addf %{{.*}}, %[[DF]] : f32
// CHECK: arith.divf %{{.*}}, %[[DEN]] : f32
// CHECK: vector.load %[[SCR]][%{{.*}}] : memref<?xf32>, vector<2xf32>
// CHECK: vector.store %{{.*}}, %arg3[%{{.*}}] : memref<?xbf16>, vector<2xbf16>
// DS32-LABEL: func.func @relu_squared
// DS32: \22elements\22: \22B * 4 * N * 66\22
func.func @relu_squared(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                        %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.linear_attention bidirectional %q, %k, %v normalize
    feature_map(%x: vector<64xf32>) {
      %zero = arith.constant dense<0.0> : vector<64xf32>
      %relu = arith.maximumf %x, %zero : vector<64xf32>
      %sq = arith.mulf %relu, %relu : vector<64xf32>
      attn.yield %sq : vector<64xf32>
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

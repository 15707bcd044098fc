// convert-attn-linear-to-gpu with feature maps that are not elementwise,
// read captured tensors or change the feature dim: a feature kernel
// (<name>_phi, one thread per (b, t, h) row, the region's vector ops as
// scalar code) writes phi(q), phi(k) to workspaces that the chunked kernel
// then reads with the identity map.
// RUN: attn-opt %s --attn-select-schedule=target=sm_80 --convert-attn-linear-to-gpu --split-input-file | FileCheck %s
// RUN: attn-opt %s --attn-compile=target=sm_80 --split-input-file | FileCheck %s --check-prefix=PTX

// A softmax over the features (Hedgehog-style), GQA (4 query heads, 2 kv).
// CHECK-LABEL: func.func @softmax_map
// The spec's region, rewritten into the same computation on scalars.
// CHECK: attn.linear_attention causal
// CHECK: vector.extract
// CHECK: math.exp {{.*}} : f32
// CHECK: vector.from_elements
// CHECK: attn.gpu_kernel = "softmax_map"
// CHECK: gpu.module @softmax_map_kernels
// CHECK: gpu.func @softmax_map(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index) kernel
// CHECK-SAME: \22D\22: 64, \22Dv\22: 64, \22F\22: 64, \22H\22: 4, \22Hkv\22: 2, \22args\22: [{\22elem\22: \22bf16\22, \22kind\22: \22memref\22, \22name\22: \22phi_q\22, \22rank\22: 1}, {\22elem\22: \22bf16\22, \22kind\22: \22memref\22, \22name\22: \22phi_k\22
// CHECK-SAME: \22feature_kernel\22: {\22args\22: [{\22elem\22: \22bf16\22, \22kind\22: \22memref\22, \22name\22: \22q\22, \22rank\22: 1}
// CHECK-SAME: \22block\22: [128, 1, 1], \22dynamic_smem\22: 0, \22grid\22: [\22ceil(N/128)\22, 6, \22B\22], \22kernel\22: \22softmax_map_phi\22}
// CHECK-SAME: \22launch_order\22: [\22softmax_map_phi\22, \22softmax_map\22]
// CHECK-SAME: \22workspace\22: [{\22dtype\22: \22bf16\22, \22name\22: \22phi_q\22, \22shape\22: [\22B\22, 4, \22N\22, 64]}, {\22dtype\22: \22bf16\22, \22name\22: \22phi_k\22, \22shape\22: [\22B\22, 2, \22N\22, 64]}]
// The chunked kernel applies no feature map (no math.exp).
// CHECK-NOT: math.exp
// CHECK: nvvm.mma.sync
// CHECK: gpu.func @softmax_map_phi(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: index
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>
// CHECK: gpu.block_id y
// CHECK: scf.if
// CHECK: memref.load %{{.*}} : memref<?xbf16>
// CHECK: arith.extf
// CHECK: arith.maximumf {{.*}} : f32
// CHECK: math.exp {{.*}} : f32
// CHECK: arith.divf {{.*}} : f32
// CHECK: vector.store {{.*}} : memref<?xbf16>, vector<2xbf16>
// CHECK: scf.if
// CHECK: math.exp {{.*}} : f32
// CHECK: vector.store {{.*}} : memref<?xbf16>, vector<2xbf16>
// PTX: .visible .entry softmax_map(
// PTX-SAME: .visible .entry softmax_map_phi(
func.func @softmax_map(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x2x?x64xbf16>,
                       %v: tensor<?x2x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.linear_attention causal %q, %k, %v normalize
    feature_map(%x: vector<64xf32>) {
      %pad = arith.constant 0.0 : f32
      %m = vector.reduction <maximumf>, %x : vector<64xf32> into f32
      %mb = vector.broadcast %m : f32 to vector<64xf32>
      %s = arith.subf %x, %mb : vector<64xf32>
      %e = math.exp %s : vector<64xf32>
      %z = vector.reduction <add>, %e, %pad : vector<64xf32> into f32
      %zb = vector.broadcast %z : f32 to vector<64xf32>
      %p = arith.divf %e, %zb : vector<64xf32>
      attn.yield %p : vector<64xf32>
    } : tensor<?x4x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

// A captured projection (Performer-style W x with a multi_reduction), the
// query scale applied before the map in the feature kernel.
// CHECK-LABEL: func.func @projection
// CHECK: tensor.extract %arg3
// CHECK: gpu.func @projection(
// CHECK-SAME: \22F\22: 64
// CHECK-SAME: \22captures\22: [{\22dtype\22: \22f32\22, \22name\22: \22capture0\22, \22shape\22: [64, 64]}]
// CHECK-SAME: {\22elem\22: \22f32\22, \22kind\22: \22memref_f32\22, \22name\22: \22capture0\22, \22rank\22: 1}, {\22elem\22: \22bf16\22, \22kind\22: \22memref\22, \22name\22: \22phi_q\22
// CHECK-SAME: \22scale\22: 0.5
// CHECK: gpu.func @projection_phi(%{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %[[W:.*]]: memref<?xf32>, %{{.*}}: memref<?xbf16>, %{{.*}}: memref<?xbf16>, %{{.*}}: index
// CHECK: scf.if
// CHECK: arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK: memref.load %[[W]][%{{.*}}] : memref<?xf32>
// CHECK: math.exp {{.*}} : f32
// PTX: .visible .entry projection(
// PTX-SAME: .visible .entry projection_phi(
func.func @projection(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                      %v: tensor<?x4x?x64xbf16>, %w: tensor<64x64xf32>)
    -> tensor<?x4x?x64xbf16> {
  %o = attn.linear_attention causal %q, %k, %v captures(%w : tensor<64x64xf32>)
    normalize scale = 0.5
    feature_map(%x: vector<64xf32>) {
      %c0 = arith.constant 0 : index
      %pad = arith.constant 0.0 : f32
      %wm = vector.transfer_read %w[%c0, %c0], %pad {in_bounds = [true, true]}
        : tensor<64x64xf32>, vector<64x64xf32>
      %xb = vector.broadcast %x : vector<64xf32> to vector<64x64xf32>
      %prod = arith.mulf %wm, %xb : vector<64x64xf32>
      %zero = arith.constant dense<0.0> : vector<64xf32>
      %wx = vector.multi_reduction <add>, %prod, %zero [1]
        : vector<64x64xf32> to vector<64xf32>
      %e = math.exp %wx : vector<64xf32>
      attn.yield %e : vector<64xf32>
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

// -----

// F = 2 D with the position (cosFormer-style): the chunked kernel runs at
// F = 128 (107008 bytes of shared memory with dv-slice 64).
// CHECK-LABEL: func.func @cosine
// CHECK: gpu.func @cosine(
// CHECK-SAME: \22D\22: 64, \22Dv\22: 64, \22F\22: 128
// CHECK-SAME: \22dynamic_smem\22: 107008
// CHECK-SAME: \22shape\22: [\22B\22, 4, \22N\22, 128]
// CHECK: gpu.func @cosine_phi(
// CHECK: arith.index_cast
// CHECK: math.cos {{.*}} : f32
// CHECK: math.sin {{.*}} : f32
// PTX: .visible .entry cosine(
// PTX-SAME: .visible .entry cosine_phi(
func.func @cosine(%q: tensor<?x4x?x64xbf16>, %k: tensor<?x4x?x64xbf16>,
                  %v: tensor<?x4x?x64xbf16>) -> tensor<?x4x?x64xbf16> {
  %o = attn.linear_attention causal %q, %k, %v normalize
    feature_map(%x: vector<64xf32>, %t: index) {
      %zero = arith.constant dense<0.0> : vector<64xf32>
      %relu = arith.maximumf %x, %zero : vector<64xf32>
      %ti = arith.index_cast %t : index to i64
      %tf = arith.sitofp %ti : i64 to f32
      %c = arith.constant 3.83495197e-04 : f32
      %angle = arith.mulf %tf, %c : f32
      %cos = math.cos %angle : f32
      %sin = math.sin %angle : f32
      %cb = vector.broadcast %cos : f32 to vector<64xf32>
      %sb = vector.broadcast %sin : f32 to vector<64xf32>
      %rc = arith.mulf %relu, %cb : vector<64xf32>
      %rs = arith.mulf %relu, %sb : vector<64xf32>
      %r = vector.shuffle %rc, %rs [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
        31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
        49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66,
        67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84,
        85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101,
        102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115,
        116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127]
        : vector<64xf32>, vector<64xf32>
      attn.yield %r : vector<128xf32>
    } : tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>, tensor<?x4x?x64xbf16>
      -> tensor<?x4x?x64xbf16>
  return %o : tensor<?x4x?x64xbf16>
}

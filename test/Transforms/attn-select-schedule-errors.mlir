// RUN: attn-opt %s --attn-select-schedule=target=sm_90a -split-input-file -verify-diagnostics
// RUN: not attn-opt %s --attn-select-schedule="target=sm_80 block-kv=64" -split-input-file -o /dev/null 2>&1 | FileCheck %s --check-prefix=FORCED
// FORCED: head dims 256/256 do not fit sm_80 with the forced block-q=0 block-kv=64 (0: free): the kernel for them (mma.sync, 16 query rows per warp) keeps each warp's output rows (16 x 256 f32) and query rows (16 x 256 f16) in registers, which takes 224 registers per thread with 64-key tiles, against the 160 of 255 it can spare, and keeps a 64-row tile of K and of V in shared memory, 67584 bytes against the 49152 (48 KB) of static shared memory a block may use; supported: head dims that are multiples of 16 up to 192 (d = dv; a smaller value dim leaves room for a larger d), with free or smaller block sizes; the CPU backend takes any head dim
// The CPU's budget is its cache, not a limit: past it, the smallest chunk.
// RUN: attn-opt %s --attn-select-schedule=target=cpu -split-input-file 2>/dev/null | FileCheck %s --check-prefix=CPU
// CPU: #attn.schedule<target = "cpu", block_q = 64, block_kv = 32
// CPU: #attn.schedule<target = "cpu", block_q = 16, block_kv = 16

// Head dim 256 does not fit the register-resident mma.sync kernel: Q, S and
// O fragments for 16 rows per warp exceed the register budget.
func.func @f16_d256(%q: tensor<?x4x?x256xf16>, %k: tensor<?x4x?x256xf16>,
                    %v: tensor<?x4x?x256xf16>) -> tensor<?x4x?x256xf16> {
  // expected-error @+1 {{head dims 256/256 are not supported on sm_90a yet: the kernel for them (mma.sync, 16 query rows per warp; the wgmma kernel takes head dims 64 and 128 only) keeps each warp's output rows (16 x 256 f32) and query rows (16 x 256 f16) in registers, which takes 200 registers per thread even with 16-key tiles, against the 160 of 255 it can spare; supported: head dims that are multiples of 16 up to 192 (d = dv; a smaller value dim leaves room for a larger d); the CPU backend takes any head dim}}
  %o = attn.attention %q, %k, %v
    : tensor<?x4x?x256xf16>, tensor<?x4x?x256xf16>, tensor<?x4x?x256xf16>
      -> tensor<?x4x?x256xf16>
  return %o : tensor<?x4x?x256xf16>
}

// -----

// Linear attention and scans: even the shortest chunk's rows of phi(q),
// phi(k), v and the gates exceed the on-chip budget at F = Dv = 1024.
func.func @scan_d1024(%q: tensor<?x1x?x1024xbf16>, %k: tensor<?x1x?x1024xbf16>,
                      %v: tensor<?x1x?x1024xbf16>) -> tensor<?x1x?x1024xbf16> {
  // expected-error @+1 {{no chunk length fits sm_90a (49152 bytes on chip) for feature dim 1024 and value dim 1024}}
  %o = attn.scan causal %q, %k, %v
    : tensor<?x1x?x1024xbf16>, tensor<?x1x?x1024xbf16>, tensor<?x1x?x1024xbf16>
      -> tensor<?x1x?x1024xbf16>
  return %o : tensor<?x1x?x1024xbf16>
}

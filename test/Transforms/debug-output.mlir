// The passes' LLVM_DEBUG output (-debug-only=<pass flag>): the mask analysis
// and the schedule's candidates and choice. Only where attn-opt has
// -debug-only (an LLVM with assertions; see lit.cfg.py and
// docs/user-guide.md, "Debug output and logs").
// REQUIRES: debug-only
// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule=target=sm_80 -debug-only=attn-analyze-masks,attn-select-schedule -o /dev/null 2>&1 | FileCheck %s --check-prefix=SM80
// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule=target=sm_90a -debug-only=attn-select-schedule -o /dev/null 2>&1 | FileCheck %s --check-prefix=SM90
// RUN: attn-opt %s --attn-analyze-masks --attn-select-schedule=target=cpu --attn-tile -debug-only=attn-tile -o /dev/null 2>&1 | FileCheck %s --check-prefix=TILE

// SM80: mask kind index, depends on batch 0, head 0, score keep 0
// SM80: target sm_80, d=128 dv=128, 2-byte elements, masked, forced block-q=0 block-kv=0 (0: free)
// SM80: candidate 128x128: {{[0-9]+}} B on chip (of 49152), {{[0-9]+}} acc regs/thread (of 160), does not fit
// SM80: candidate 64x64: 34816 B on chip (of 49152)
// SM80: chose #attn.schedule<target = "sm_80", block_q = 64, block_kv = 64, warps = 4, stages = 1, smem_bytes = 34816>

// SM90: target sm_90a, d=128 dv=128, 2-byte elements, masked
// SM90-NEXT: wgmma kernel: 128x128, 2 stages, 163840 B

// TILE: tiling attn.attention at {{.*}} with #attn.schedule<target = "cpu"

func.func @causal(%q: tensor<?x4x?x128xbf16>, %k: tensor<?x4x?x128xbf16>, %v: tensor<?x4x?x128xbf16>) -> tensor<?x4x?x128xbf16> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %keep = arith.cmpi uge, %i, %j : index
      attn.yield %keep : i1
    } : tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16>, tensor<?x4x?x128xbf16> -> tensor<?x4x?x128xbf16>
  return %o : tensor<?x4x?x128xbf16>
}

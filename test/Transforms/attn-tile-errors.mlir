// attn-tile needs the schedule and the mask analysis on every attention op,
// and a known linear-form.
// RUN: attn-opt %s --attn-tile -split-input-file -verify-diagnostics -o /dev/null
// RUN: not attn-opt %s --attn-tile=linear-form=parallel -o /dev/null 2>&1 | FileCheck %s --check-prefix=FORM

// FORM: error: attn-tile: unknown linear-form 'parallel' (expected chunked or recurrent)

func.func @unscheduled(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                       %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  // expected-error @+1 {{has no #attn.schedule; run attn-select-schedule before attn-tile}}
  %o = attn.attention %q, %k, %v
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// -----

func.func @no_mask_info(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                        %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  // expected-error @+1 {{has no #attn.mask_info; run attn-analyze-masks before attn-tile}}
  %o = attn.attention %q, %k, %v
    {schedule = #attn.schedule<target = "cpu", block_q = 64, block_kv = 64, warps = 1, stages = 1, smem_bytes = 0>}
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

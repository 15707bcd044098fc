// Dilated sliding-window causal attention: within a window of 128 past keys,
// query i sees every second key, (i - j) rem 2 == 0 (Longformer's dilated
// window, Beltagy et al. 2020).
func.func @dilated_window(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                          %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %w = arith.constant 128 : index
      %c2 = arith.constant 2 : index
      %c0 = arith.constant 0 : index
      %causal = arith.cmpi uge, %i, %j : index
      %d = arith.subi %i, %j : index
      %near = arith.cmpi slt, %d, %w : index
      %r = arith.remsi %d, %c2 : index
      %even = arith.cmpi eq, %r, %c0 : index
      %a = arith.andi %causal, %near : i1
      %keep = arith.andi %a, %even : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

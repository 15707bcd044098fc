// 2D neighborhood attention (Hassani et al. 2023, "Neighborhood Attention
// Transformer"): tokens are pixels of a grid of width W = 16 in row-major
// order, token i at (i / 16, i % 16); a query sees the keys in the 5x5
// neighborhood around it, |row_i - row_j| <= 2 and |col_i - col_j| <= 2.
func.func @neighborhood_2d(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                           %v: tensor<?x4x?x64xf32>) -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %w = arith.constant 16 : index
      %r = arith.constant 2 : index
      %ri = arith.divui %i, %w : index
      %ci = arith.remui %i, %w : index
      %rj = arith.divui %j, %w : index
      %cj = arith.remui %j, %w : index
      %dr = arith.subi %ri, %rj : index
      %dc = arith.subi %ci, %cj : index
      %adr = math.absi %dr : index
      %adc = math.absi %dc : index
      %okr = arith.cmpi sle, %adr, %r : index
      %okc = arith.cmpi sle, %adc, %r : index
      %keep = arith.andi %okr, %okc : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

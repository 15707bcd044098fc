// Block-sparse attention (Child et al. 2019, "Sparse Transformers"; BigBird,
// Zaheer et al. 2020): a captured layout of 64x64 blocks says which blocks of
// the score matrix are computed: keep (i, j) if layout[i / 64, j / 64] != 0.
// attn-run draws the layout as [ceil(nq/64), ceil(nk/64)] random bits.
func.func @block_sparse(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                        %v: tensor<?x4x?x64xf32>,
                        %layout: tensor<?x?xi8> {attn.run_dims = ["nq/64", "nk/64"],
                                                 attn.run_init = "bits:0.5"})
    -> tensor<?x4x?x64xf32> {
  %o = attn.attention %q, %k, %v captures(%layout : tensor<?x?xi8>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %bs = arith.constant 64 : index
      %zero = arith.constant 0 : i8
      %bi = arith.divui %i, %bs : index
      %bj = arith.divui %j, %bs : index
      %x = tensor.extract %layout[%bi, %bj] : tensor<?x?xi8>
      %keep = arith.cmpi ne, %x, %zero : i8
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

// per-head data: layout[h, i/64, j/64]
func.func @hd(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
               %v: tensor<?x4x?x64xf32>,
               %layout: tensor<4x?x?xi8> {attn.run_dims = ["4", "nq/64", "nk/64"], attn.run_init = "bits:0.5"})
    -> (tensor<?x4x?x64xf32>, tensor<?x4x?xf32>) {
  %o, %lse = attn.attention %q, %k, %v captures(%layout : tensor<4x?x?xi8>)
    mask(%b: index, %h: index, %i: index, %j: index) {
      %bs = arith.constant 64 : index
      %zero = arith.constant 0 : i8
      %bi = arith.divui %i, %bs : index
      %bj = arith.divui %j, %bs : index
      %x = tensor.extract %layout[%h, %bi, %bj] : tensor<4x?x?xi8>
      %keep = arith.cmpi ne, %x, %zero : i8
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32> -> tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
  return %o, %lse : tensor<?x4x?x64xf32>, tensor<?x4x?xf32>
}

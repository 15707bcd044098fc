// LinGen's MATE block (Wang et al., "LinGen: Towards High-Resolution Minute-
// Length Text-to-Video Generation with Linear Computational Complexity"):
// for a video of T x H x W = 4 x 6 x 8 latent tokens with 4 review tokens in
// front (196 tokens), the sum of
//  - the MA branch: a bidirectional Mamba2 scan whose token order rotates
//    from layer to layer (rotary-major scan: t-major, then h-major, then
//    w-major), the review tokens scanned first; the order is folded into the
//    kernel's addressing, o comes back in storage order;
//  - the TESA branch (TEmporal Swin Attention): softmax attention inside 3D
//    windows of 2 x 3 x 4 tokens (shifted by half a window on odd layers in
//    LinGen; unshifted here), review tokens global.
// Run one layer with `attn-run examples/mate.mlir --func mate_layer1 --nq 196 --nk 196`.
// attn-run: --func mate_layer1 --batch 2 --nq 196 --nk 196

func.func @mate_layer0(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                       %v: tensor<?x4x?x64xf32>, %g: tensor<?x4x?xf32>)
    -> tensor<?x4x?x64xf32> {
  %ma = attn.scan bidirectional %q, %k, %v decay(%g : tensor<?x4x?xf32>)
    {order = #attn.token_order<grid = [4, 6, 8], perm = [0, 1, 2], review = 4>}
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  %sw = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %r = arith.constant 4 : index
      %hw = arith.constant 48 : index
      %w = arith.constant 8 : index
      %six = arith.constant 6 : index
      %wt = arith.constant 2 : index
      %wh = arith.constant 3 : index
      %ww = arith.constant 4 : index
      %iglob = arith.cmpi ult, %i, %r : index
      %jglob = arith.cmpi ult, %j, %r : index
      %glob = arith.ori %iglob, %jglob : i1
      %gi = arith.subi %i, %r : index
      %gj = arith.subi %j, %r : index
      %ti = arith.divui %gi, %hw : index
      %tj = arith.divui %gj, %hw : index
      %hi0 = arith.divui %gi, %w : index
      %hj0 = arith.divui %gj, %w : index
      %hi = arith.remui %hi0, %six : index
      %hj = arith.remui %hj0, %six : index
      %wi = arith.remui %gi, %w : index
      %wj = arith.remui %gj, %w : index
      %twi = arith.divui %ti, %wt : index
      %twj = arith.divui %tj, %wt : index
      %hwi = arith.divui %hi, %wh : index
      %hwj = arith.divui %hj, %wh : index
      %wwi = arith.divui %wi, %ww : index
      %wwj = arith.divui %wj, %ww : index
      %st = arith.cmpi eq, %twi, %twj : index
      %sh = arith.cmpi eq, %hwi, %hwj : index
      %sw0 = arith.cmpi eq, %wwi, %wwj : index
      %s1 = arith.andi %st, %sh : i1
      %same = arith.andi %s1, %sw0 : i1
      %keep = arith.ori %glob, %same : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  %o = arith.addf %ma, %sw : tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

func.func @mate_layer1(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                       %v: tensor<?x4x?x64xf32>, %g: tensor<?x4x?xf32>)
    -> tensor<?x4x?x64xf32> {
  %ma = attn.scan bidirectional %q, %k, %v decay(%g : tensor<?x4x?xf32>)
    {order = #attn.token_order<grid = [4, 6, 8], perm = [1, 2, 0], review = 4>}
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  %sw = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %r = arith.constant 4 : index
      %hw = arith.constant 48 : index
      %w = arith.constant 8 : index
      %six = arith.constant 6 : index
      %wt = arith.constant 2 : index
      %wh = arith.constant 3 : index
      %ww = arith.constant 4 : index
      %iglob = arith.cmpi ult, %i, %r : index
      %jglob = arith.cmpi ult, %j, %r : index
      %glob = arith.ori %iglob, %jglob : i1
      %gi = arith.subi %i, %r : index
      %gj = arith.subi %j, %r : index
      %ti = arith.divui %gi, %hw : index
      %tj = arith.divui %gj, %hw : index
      %hi0 = arith.divui %gi, %w : index
      %hj0 = arith.divui %gj, %w : index
      %hi = arith.remui %hi0, %six : index
      %hj = arith.remui %hj0, %six : index
      %wi = arith.remui %gi, %w : index
      %wj = arith.remui %gj, %w : index
      %twi = arith.divui %ti, %wt : index
      %twj = arith.divui %tj, %wt : index
      %hwi = arith.divui %hi, %wh : index
      %hwj = arith.divui %hj, %wh : index
      %wwi = arith.divui %wi, %ww : index
      %wwj = arith.divui %wj, %ww : index
      %st = arith.cmpi eq, %twi, %twj : index
      %sh = arith.cmpi eq, %hwi, %hwj : index
      %sw0 = arith.cmpi eq, %wwi, %wwj : index
      %s1 = arith.andi %st, %sh : i1
      %same = arith.andi %s1, %sw0 : i1
      %keep = arith.ori %glob, %same : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  %o = arith.addf %ma, %sw : tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

func.func @mate_layer2(%q: tensor<?x4x?x64xf32>, %k: tensor<?x4x?x64xf32>,
                       %v: tensor<?x4x?x64xf32>, %g: tensor<?x4x?xf32>)
    -> tensor<?x4x?x64xf32> {
  %ma = attn.scan bidirectional %q, %k, %v decay(%g : tensor<?x4x?xf32>)
    {order = #attn.token_order<grid = [4, 6, 8], perm = [2, 0, 1], review = 4>}
    : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  %sw = attn.attention %q, %k, %v
    mask(%b: index, %h: index, %i: index, %j: index) {
      %r = arith.constant 4 : index
      %hw = arith.constant 48 : index
      %w = arith.constant 8 : index
      %six = arith.constant 6 : index
      %wt = arith.constant 2 : index
      %wh = arith.constant 3 : index
      %ww = arith.constant 4 : index
      %iglob = arith.cmpi ult, %i, %r : index
      %jglob = arith.cmpi ult, %j, %r : index
      %glob = arith.ori %iglob, %jglob : i1
      %gi = arith.subi %i, %r : index
      %gj = arith.subi %j, %r : index
      %ti = arith.divui %gi, %hw : index
      %tj = arith.divui %gj, %hw : index
      %hi0 = arith.divui %gi, %w : index
      %hj0 = arith.divui %gj, %w : index
      %hi = arith.remui %hi0, %six : index
      %hj = arith.remui %hj0, %six : index
      %wi = arith.remui %gi, %w : index
      %wj = arith.remui %gj, %w : index
      %twi = arith.divui %ti, %wt : index
      %twj = arith.divui %tj, %wt : index
      %hwi = arith.divui %hi, %wh : index
      %hwj = arith.divui %hj, %wh : index
      %wwi = arith.divui %wi, %ww : index
      %wwj = arith.divui %wj, %ww : index
      %st = arith.cmpi eq, %twi, %twj : index
      %sh = arith.cmpi eq, %hwi, %hwj : index
      %sw0 = arith.cmpi eq, %wwi, %wwj : index
      %s1 = arith.andi %st, %sh : i1
      %same = arith.andi %s1, %sw0 : i1
      %keep = arith.ori %glob, %same : i1
      attn.yield %keep : i1
    } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>
  %o = arith.addf %ma, %sw : tensor<?x4x?x64xf32>
  return %o : tensor<?x4x?x64xf32>
}

//===- AttnOps.td - attn dialect operations ------------------*- tablegen -*-===//
#ifndef ATTN_OPS_TD
#define ATTN_OPS_TD

include "AttnBase.td"
include "AttnInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"

class Attn_Op<string mnemonic, list<Trait> traits = []>
    : Op<Attn_Dialect, mnemonic, traits>;

def Attn_AttentionOp : Attn_Op<"attention", [Pure, RecursiveMemoryEffects,
                                             AttrSizedOperandSegments]> {
  let summary = "Softmax attention with score and mask callbacks";
  let description = [{
    Computes, for every batch `b`, query head `h`, query `i`:

    ```
    s_ij  = score(scale * q[b,h,i,:] . k[b,h/G,j,:], b, h, i, j)   (identity if absent)
    keep  = mask(b, h, i, j)                                       (true if absent)
    o[b,h,i,:] = sum_j softmax_j(s_ij | keep) * v[b,h/G,j,:]
    lse[b,h,i] = log sum_j exp(s_ij | keep)
    ```

    with `G = Hq / Hkv` (grouped-query attention; `Hkv = 1` is MQA). Shapes:
    q `[B, Hq, Nq, D]`, k `[B, Hkv, Nk, D]`, v `[B, Hkv, Nk, Dv]`, o
    `[B, Hq, Nq, Dv]`, lse `[B, Hq, Nq]` (f32). B, Nq and Nk may be dynamic;
    heads and head dims are static. Elements are f32, f16 or bf16 (q, k, v
    alike); scores and the softmax state are f32. `scale` defaults to
    `1/sqrt(D)`.

    A query row whose keys are all masked yields `o = 0` and `lse = -inf`.

    Positions: the regions' `i` is the query's position. By default query
    `i` is at position `i` (top-left alignment). With `queries_at_end` the
    queries are the last `Nq` positions of the `Nk` keys (bottom-right
    alignment: decode, speculative decoding, prefill against a cache):
    query `i` is at position `i + Nk - Nq`, so a causal mask
    `i >= j` lets the last query see every key. `queries_at_end` needs
    `Nq <= Nk` (checked when both are static, and by every launcher).

    Paged KV caches: with `pages(%table)`, k and v are pools of pages,
    `[P, Hkv, S, D]` and `[P, Hkv, S, Dv]` (page size `S` static), and
    `%table : tensor<B x M x i32>` is the block table: key `j` of batch `b`
    is row `j mod S` of page `table[b, j / S]`, so `Nk = M * S`. Pages may
    be shared between sequences and appear in any order. Every entry must
    lie in `[0, P)`: launchers check it on host data; on the device an entry
    out of range reads outside the pool. Masks, score regions and
    `queries_at_end` see the logical positions `j`, so they compose with
    paging unchanged.

    Per-sequence key counts (a KV cache filled to different lengths): with
    `kv_lens(%n)`, `%n : tensor<B x i32>`, sequence `b` has `n[b]` keys (`0
    <= n[b] <= Nk`): keys `j >= n[b]` are invisible and, with
    `queries_at_end`, query `i` is at position `i + n[b] - Nq` (then `n[b] >=
    Nq`). Launchers check the values on host data; on the device they are
    clamped into that range.

    Packed variable-length batches (FlashAttention's varlen form): with
    `cu_seqlens_q(%cq) cu_seqlens_k(%ck)`, both `tensor<(B+1) x i32>`
    cumulative lengths, q, k, v and o hold the B sequences one after the
    other along dim 2 (`[1, H, total, D]`, no padding): sequence `b` has the
    query rows `[cq[b], cq[b+1])` and the key rows `[ck[b], ck[b+1])`. The
    regions see `b` as the sequence and `i`, `j` as positions inside it (so
    a causal mask is per sequence; `queries_at_end` aligns each sequence's
    queries to the end of its own keys), and no work crosses sequences.
    Offsets must start at 0, not decrease and stay within the packed
    length; lowerings clamp them into that range. Rows outside every
    sequence yield `o = 0` and `lse = -inf`. lse is `[1, Hq, total_q]`.
    Not combined with `pages` or `kv_lens` yet.

    Attention sinks (gpt-oss, StreamingLLM): with `sinks(%s)`, `%s :
    tensor<Hq x f32>` holds one learned logit per query head that joins
    every row's softmax denominator without a value:
    `o = sum_j e^{s_ij} v_j / (e^{sink_h} + sum_j e^{s_ij})` and
    `lse = log(e^{sink_h} + sum_j e^{s_ij})` (the sink is in the units of
    the scores the `score` region yields). A row whose keys are all masked
    then has `o = 0` and `lse = sink_h`.

    The `score` region takes `(s: f32, b, h, i, j: index)` and yields an f32;
    yielding `-inf` masks the key. The `mask` region takes
    `(b, h, i, j: index)` and yields an i1 (true = visible). Regions are pure
    scalar code (arith, math, `tensor.extract`); the only values they may use
    from above are the tensors listed in `captures(...)`, and every capture
    must be used.

    Example (causal attention with a tanh softcap, GQA 8:2):

    ```mlir
    %o = attn.attention %q, %k, %v scale = 0.125
      score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
        %cap = arith.constant 30.0 : f32
        %x = arith.divf %s, %cap : f32
        %t = math.tanh %x : f32
        %r = arith.mulf %t, %cap : f32
        attn.yield %r : f32
      }
      mask(%b: index, %h: index, %i: index, %j: index) {
        %c = arith.cmpi uge, %i, %j : index
        attn.yield %c : i1
      } : tensor<?x8x?x64xf32>, tensor<?x2x?x64xf32>, tensor<?x2x?x64xf32>
        -> tensor<?x8x?x64xf32>
    ```

    Decode against a paged cache (pages of 16 tokens, GQA 32:8):

    ```mlir
    %o = attn.attention %q, %kp, %vp pages(%table : tensor<?x?xi32>)
        queries_at_end
      mask(%b: index, %h: index, %i: index, %j: index) {
        %c = arith.cmpi uge, %i, %j : index
        attn.yield %c : i1
      } : tensor<?x32x?x128xbf16>, tensor<?x8x16x128xbf16>,
          tensor<?x8x16x128xbf16> -> tensor<?x32x?x128xbf16>
    ```

    With captured data (document masking):

    ```mlir
    %o = attn.attention %q, %k, %v captures(%docs : tensor<?xi32>)
      mask(%b: index, %h: index, %i: index, %j: index) {
        %di = tensor.extract %docs[%i] : tensor<?xi32>
        %dj = tensor.extract %docs[%j] : tensor<?xi32>
        %c = arith.cmpi eq, %di, %dj : i32
        attn.yield %c : i1
      } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
        -> tensor<?x4x?x64xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$q, AnyRankedTensor:$k,
                       AnyRankedTensor:$v,
                       Optional<AnyRankedTensor>:$page_table,
                       Optional<AnyRankedTensor>:$kv_lens,
                       Optional<AnyRankedTensor>:$cu_seqlens_q,
                       Optional<AnyRankedTensor>:$cu_seqlens_k,
                       Optional<AnyRankedTensor>:$sinks,
                       Variadic<AnyRankedTensor>:$captures,
                       OptionalAttr<F32Attr>:$scale,
                       UnitAttr:$queries_at_end,
                       OptionalAttr<Attn_MaskInfoAttr>:$mask_info,
                       OptionalAttr<Attn_ScheduleAttr>:$schedule);
  let results = (outs AnyRankedTensor:$o, Optional<AnyRankedTensor>:$lse);
  let regions = (region MaxSizedRegion<1>:$score, MaxSizedRegion<1>:$mask);
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    /// The scale actually applied to q.k (the attribute or 1/sqrt(D)).
    float getEffectiveScale();
    int64_t getHeadDim();
    int64_t getValueDim();
    int64_t getNumQueryHeads();
    int64_t getNumKvHeads();
    bool hasScoreRegion() { return !getScore().empty(); }
    bool hasMaskRegion() { return !getMask().empty(); }
    /// Whether k and v are page pools read through `page_table`.
    bool isPaged() { return bool(getPageTable()); }
    /// Whether q, k and v pack variable-length sequences (cu_seqlens).
    bool isVarlen() { return bool(getCuSeqlensQ()); }
    /// The page size S of a paged op (k's dim 2); 0 when not paged.
    int64_t getPageSize();
    /// The table's checks; returns Nk (k's dim 2 when not paged; dynamic
    /// when the table's width is).
    FailureOr<int64_t> verifyPageTable(RankedTensorType q, RankedTensorType k);
    /// The checks of cu_seqlens_q / cu_seqlens_k.
    LogicalResult verifyVarlen(RankedTensorType q);
  }];
}

def Attn_AttentionGradOp : Attn_Op<"attention_grad",
                                   [Pure, RecursiveMemoryEffects,
                                    AttrSizedOperandSegments]> {
  let summary = "Backward pass of softmax attention (dq, dk, dv, capture grads)";
  let description = [{
    The gradients of an `attn.attention` with respect to q, k, v and the
    captured float tensors that its `score` region reads, given the
    forward's output `o`, its log-sum-exp `lse` and the output gradient
    `dO`. Usually made by `attn-differentiate`. With `S` the scores of the
    forward (`score` region applied to `s = scale * q . k`), `P` the
    probabilities recomputed from `lse`:

    ```
    P_ij  = keep_ij ? exp(S_ij - lse_i) : 0        (0 on rows with lse = -inf)
    dV_j  = sum_i P_ij dO_i                        (summed over the group's query heads)
    dP_ij = dO_i . V_j,   D_i = dO_i . O_i - dLSE_i   (dLSE_i = 0 without one)
    dS_ij = P_ij (dP_ij - D_i) * dS/ds (s_ij)      (the `score_grad` region)
    dQ_i  = scale * sum_j dS_ij K_j,   dK_j = scale * sum_i dS_ij Q_i
    dC[idx_site(ij)] += P_ij (dP_ij - D_i) * dS/dc_site (s_ij)
    ```

    Operands: q, k, v, o, lse, dO, optionally dLSE (the gradient of the
    forward's lse, `[B, Hq, Nq]` f32, for a loss that reads lse; a seventh
    operand before the captures), then the forward's `captures(...)`.
    Results: dq, dk, dv (the types of q, k, v), then one gradient per
    captured float tensor that the `score` region reads (in capture order;
    the capture's shape with f32 elements).

    The `score` and `mask` regions are the forward's. The `score_grad`
    region (required with a `score` region) takes the same arguments as
    `score` and yields the derivative of the score with respect to `s`,
    then, for every *site* (a `tensor.extract` of a captured float tensor in
    `score`, in order), the derivative with respect to the extracted
    element followed by the element's indices. `capture_sites[k]` is the
    capture (operand position in `captures`) that site `k` reads.

    ```mlir
    // Learned relative bias: score = s + bias[h, min(|i - j|, 31)].
    %dq, %dk, %dv, %dbias = attn.attention_grad %q, %k, %v, %o, %lse, %do
        captures(%bias : tensor<4x32xf32>)
      score(%s: f32, %b: index, %h: index, %i: index, %j: index) {
        %c31 = arith.constant 31 : index
        %d = arith.subi %i, %j : index
        %a = math.absi %d : index
        %t = arith.minsi %a, %c31 : index
        %bv = tensor.extract %bias[%h, %t] : tensor<4x32xf32>
        %r = arith.addf %s, %bv : f32
        attn.yield %r : f32
      }
      score_grad(%s: f32, %b: index, %h: index, %i: index, %j: index) {
        %one = arith.constant 1.0 : f32
        %c31 = arith.constant 31 : index
        %d = arith.subi %i, %j : index
        %a = math.absi %d : index
        %t = arith.minsi %a, %c31 : index
        attn.yield %one, %one, %h, %t : f32, f32, index, index
      } {capture_sites = array<i64: 0>}
      : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>,
        tensor<?x4x?x64xf32>, tensor<?x4x?xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>,
         tensor<4x32xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$q, AnyRankedTensor:$k,
                       AnyRankedTensor:$v, AnyRankedTensor:$o,
                       AnyRankedTensor:$lse, AnyRankedTensor:$d_o,
                       Optional<AnyRankedTensor>:$d_lse,
                       Variadic<AnyRankedTensor>:$captures,
                       OptionalAttr<F32Attr>:$scale,
                       UnitAttr:$queries_at_end,
                       DefaultValuedAttr<DenseI64ArrayAttr, "{}">:$capture_sites,
                       OptionalAttr<Attn_ScheduleAttr>:$schedule);
  let results = (outs AnyRankedTensor:$dq, AnyRankedTensor:$dk,
                      AnyRankedTensor:$dv,
                      Variadic<AnyRankedTensor>:$capture_grads);
  let regions = (region MaxSizedRegion<1>:$score, MaxSizedRegion<1>:$mask,
                        MaxSizedRegion<1>:$score_grad);
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    /// The scale actually applied to q.k (the attribute or 1/sqrt(D)).
    float getEffectiveScale();
    int64_t getHeadDim();
    int64_t getValueDim();
    int64_t getNumQueryHeads();
    int64_t getNumKvHeads();
    bool hasScoreRegion() { return !getScore().empty(); }
    bool hasMaskRegion() { return !getMask().empty(); }
    /// Positions in `captures` of the float tensors the score region
    /// reads: the captures that get a gradient, in result order.
    SmallVector<unsigned> getGradCaptureIndices();
    /// A detached attn.attention with this op's q, k, v, captures, scale,
    /// alignment and copies of its score and mask regions: the forward the
    /// backward's lowerings analyse. The caller erases it.
    AttentionOp createForwardView();
  }];
}

class Attn_LinearLikeOp<string mnemonic, list<Trait> traits = []>
    : Attn_Op<mnemonic, !listconcat(traits, [
      Pure, AttrSizedOperandSegments, RecursiveMemoryEffects,
      Attn_LinearOpInterface])> {
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
}

def Attn_LinearAttentionOp : Attn_LinearLikeOp<"linear_attention"> {
  let summary = "Kernelized linear attention with optional decay";
  let description = [{
    With feature maps `phi_q` (region `feature_map`) and `phi_k` (region
    `key_feature_map`, defaulting to `phi_q`; both default to the identity),
    per batch `b` and head `h`:

    ```
    causal:        o_t = sum_{s <= t} w(t, s) * (phi_q(scale*q_t) . phi_k(k_s)) * v_s
    bidirectional: o_t = sum_{s}      w(t, s) * (phi_q(scale*q_t) . phi_k(k_s)) * v_s
    ```

    The decay weight comes from the optional `decay(%g)` operand of log
    gates (all <= 0) through cumulative sums `L_t = sum_{r <= t} g_r`:
    `w(t, s) = exp(-|L_t - L_s|)` (so `exp(L_t - L_s)` for `s <= t`).
    The decay operand's shape selects its kind: `[H]` a constant per head
    (RetNet: `L_t = t * g_h`), `[B, H, N]` a scalar per token (Mamba2 SSD,
    simple GLA), `[B, H, N, F]` a vector per token and feature (GLA; the
    weight then applies per feature inside the dot product). With
    `normalize`, o_t is divided by the same sum with `v_s` replaced by 1
    (rows whose normalizer is 0 yield 0). The causal form equals the
    recurrence `S_t = diag(a_t) S_{t-1} + phi_k(k_t) v_t^T`,
    `o_t = S_t^T phi_q(q_t)`, and may take an `initial_state` `[B, H, F, Dv]`
    (f32) and return the final state as a second result.

    A feature map region takes `(x: vector<DxF32>)`, the row of q (scaled)
    or k, and optionally `(x, t: index)` with the token's position (for
    position-dependent maps such as cosFormer's cos/sin reweighting), and
    yields `vector<Fxf32>`; it is pure code on vectors (arith, math, vector
    ops, reads of captured tensors such as a random or learned projection).

    ```mlir
    %o = attn.linear_attention causal %q, %k, %v normalize
      feature_map(%x: vector<64xf32>) {
        // elu(x) + 1
        %one = arith.constant dense<1.0> : vector<64xf32>
        %zero = arith.constant dense<0.0> : vector<64xf32>
        %e = math.exp %x : vector<64xf32>
        %pos = arith.cmpf ogt, %x, %zero : vector<64xf32>
        %xp1 = arith.addf %x, %one : vector<64xf32>
        %r = arith.select %pos, %xp1, %e : vector<64xi1>, vector<64xf32>
        attn.yield %r : vector<64xf32>
      } : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>
        -> tensor<?x4x?x64xf32>
    ```
  }];
  let arguments = (ins Attn_DirectionAttr:$direction, AnyRankedTensor:$q,
                       AnyRankedTensor:$k, AnyRankedTensor:$v,
                       Optional<AnyRankedTensor>:$decay,
                       Optional<AnyRankedTensor>:$initial_state,
                       Variadic<AnyRankedTensor>:$captures,
                       UnitAttr:$normalize, OptionalAttr<F32Attr>:$scale,
                       OptionalAttr<Attn_ScheduleAttr>:$schedule,
                       OptionalAttr<Attn_TokenOrderAttr>:$order);
  let results = (outs AnyRankedTensor:$o,
                      Optional<AnyRankedTensor>:$final_state);
  let regions = (region MaxSizedRegion<1>:$feature_map,
                        MaxSizedRegion<1>:$key_feature_map);
  let extraClassDeclaration = [{
    float getEffectiveScale() {
      return getScale() ? getScale()->convertToFloat() : 1.0f;
    }
    /// Feature dimension F (the head dim when there is no feature map).
    int64_t getFeatureDim();
    /// LinearOpInterface.
    ValueRange getCapturedValues() { return getCaptures(); }
    Region *getQueryMap();
    Region *getKeyMap();
  }];
}

def Attn_ScanOp : Attn_LinearLikeOp<"scan"> {
  let summary = "Gated first-order recurrence (Mamba2 SSD / GLA form)";
  let description = [{
    The general recurrence, per batch and head:

    ```
    S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T        (S: [D, Dv], f32)
    o_t = S_t^T q_t
    ```

    The optional `decay(%g)` operand holds log-gates `g` (<= 0): shape `[B, H, N]` (a scalar per
    token, Mamba2) or `[B, H, N, D]` (a vector per token, GLA). `causal`
    runs forwards; `bidirectional` adds the backward scan (the same
    recurrence run from the end, gated by `g_{t+1}`) and counts the
    diagonal once: `o_t = sum_s exp(-|L_t - L_s|) (q_t . k_s) v_s` with
    `L_t = sum_{r<=t} g_r`, as in bidirectional Mamba2. An `initial_state`
    `[B, H, D, Dv]` may be given and the final state returned (causal).
    `attn.linear_attention` with identity feature maps is the same
    computation.

    Both ops take an optional `schedule` (written by `attn-select-schedule`):
    its `block_q` is the chunk length of the chunked lowering; and an
    optional `order` (`#attn.token_order`): the scan visits the tokens in
    that order (review tokens first, then a permuted grid), with gates read
    and positions counted in scan order.

    ```mlir
    %o = attn.scan causal %q, %k, %v decay(%g : tensor<?x8x?xf32>)
      : tensor<?x8x?x64xf32>, tensor<?x8x?x64xf32>, tensor<?x8x?x64xf32>
      -> tensor<?x8x?x64xf32>
    ```
  }];
  let arguments = (ins Attn_DirectionAttr:$direction, AnyRankedTensor:$q,
                       AnyRankedTensor:$k, AnyRankedTensor:$v,
                       Optional<AnyRankedTensor>:$decay,
                       Optional<AnyRankedTensor>:$initial_state,
                       OptionalAttr<Attn_ScheduleAttr>:$schedule,
                       OptionalAttr<Attn_TokenOrderAttr>:$order);
  let results = (outs AnyRankedTensor:$o,
                      Optional<AnyRankedTensor>:$final_state);
  let extraClassDeclaration = [{
    int64_t getFeatureDim();
    /// LinearOpInterface: a scan is linear attention with identity feature
    /// maps, no captures, no normalizer and scale 1.
    float getEffectiveScale() { return 1.0f; }
    ValueRange getCapturedValues() { return {}; }
    Region *getQueryMap() { return nullptr; }
    Region *getKeyMap() { return nullptr; }
    bool getNormalize() { return false; }
  }];
}

def Attn_LinearAttentionGradOp : Attn_Op<"linear_attention_grad",
    [Pure, RecursiveMemoryEffects, AttrSizedOperandSegments,
     AttrSizedResultSegments]> {
  let summary = "Backward pass of linear attention and scans";
  let description = [{
    The gradients of an `attn.linear_attention` (or an `attn.scan`, which is
    linear attention with identity feature maps) with respect to q, k, v,
    the decay's log-gates and the initial state, given the output gradient
    `dO` and optionally the gradient of the final state. Usually made by
    `attn-differentiate`. With `a_t = phi_q(scale q_t)`, `c_s = phi_k(k_s)`,
    `W_ts = exp(-|L_t - L_s|)` (per feature for `[B, H, N, F]` gates),
    `A_ts = a_t . (W_ts c_s)`, `n_t = sum_s A_ts v_s` (+ the decayed initial
    state), `z_t = sum_s A_ts`, and with `normalize` `o_t = n_t / z_t`:

    ```
    dn_t = dO_t / z_t,   dz_t = -(dO_t . o_t) / z_t     (normalize; else dn = dO, dz = 0)
    dA_ts = dn_t . v_s + dz_t
    dv_s = sum_t A_ts dn_t          da_t = sum_s dA_ts W_ts c_s
    dc_s = sum_t dA_ts W_ts a_t     dL: each pair's dA_ts a_t W_ts c_s, + on
                                    the later token, - on the earlier one
    dq_t = scale J_phi_q(scale q_t)^T da_t,  dk_s = J_phi_k(k_s)^T dc_s
    dg_r = sum_{t >= r} dL_t        (per-head decays: sum_t (t + 1) dL_t)
    ```

    plus the terms of the initial state (read by every `o_t`) and of the
    final state's gradient. dk and dv are summed over the query heads of a
    group (GQA). Positions and gates follow the op's token order.

    Operands: q, k, v, dO, then the optional `decay(...)`,
    `initial_state(...)` and `final_state_grad(...)` (`[B, H, F, Dv]` f32,
    for a forward that returns its final state), then `captures(...)`.
    Results: dq, dk, dv (the types of q, k, v), then the decay's gradient
    (its type) when there is a decay and the initial state's when there is
    one. Captured tensors read by feature maps get no gradient.

    The `feature_map` and `key_feature_map` regions are the forward's. Each
    feature map comes with a `*_jvp` region (made by `attn-differentiate`):
    it takes the map's arguments followed by a tangent row `dx` and yields
    the directional derivative `J_phi(x) dx`.

    ```mlir
    %dq, %dk, %dv, %dg = attn.linear_attention_grad causal %q, %k, %v, %do
        decay(%g : tensor<?x4x?xf32>)
      : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>,
        tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>,
         tensor<?x4x?xf32>
    ```
  }];
  let arguments = (ins Attn_DirectionAttr:$direction, AnyRankedTensor:$q,
                       AnyRankedTensor:$k, AnyRankedTensor:$v,
                       AnyRankedTensor:$d_o,
                       Optional<AnyRankedTensor>:$decay,
                       Optional<AnyRankedTensor>:$initial_state,
                       Optional<AnyRankedTensor>:$d_final_state,
                       Variadic<AnyRankedTensor>:$captures,
                       UnitAttr:$normalize, OptionalAttr<F32Attr>:$scale,
                       OptionalAttr<Attn_TokenOrderAttr>:$order);
  let results = (outs AnyRankedTensor:$dq, AnyRankedTensor:$dk,
                      AnyRankedTensor:$dv,
                      Optional<AnyRankedTensor>:$d_decay,
                      Optional<AnyRankedTensor>:$d_initial_state);
  let regions = (region MaxSizedRegion<1>:$feature_map,
                        MaxSizedRegion<1>:$key_feature_map,
                        MaxSizedRegion<1>:$feature_map_jvp,
                        MaxSizedRegion<1>:$key_feature_map_jvp);
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    float getEffectiveScale() {
      return getScale() ? getScale()->convertToFloat() : 1.0f;
    }
    int64_t getFeatureDim();
    /// A detached attn.linear_attention with this op's operands (o typed
    /// like dO, a final state when there is a final-state gradient),
    /// attributes and copies of its feature maps: the forward the
    /// backward's lowerings read. The caller erases it.
    LinearAttentionOp createForwardView();
    /// The tangent maps of q and k (null: the identity map); the key's is
    /// the query's unless the op has a separate key map.
    Region *getQueryJvp();
    Region *getKeyJvp();
  }];
}

def Attn_DeltaRuleOp : Attn_Op<"delta_rule",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "Delta-rule recurrence (DeltaNet, Gated DeltaNet)";
  let description = [{
    The delta rule's fast-weight recurrence, per batch and head, with the
    state `S_t` of shape `[D, Dv]` (f32), write strengths `beta_t` and
    optional log-gates `g_t <= 0` (`a_t = exp(g_t)`; `a_t = 1` without a
    decay):

    ```
    S_t = a_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T
    o_t = S_t^T (scale * q_t)
    ```

    Without a decay this is DeltaNet; with `decay(%g)` ([B, H, N], a scalar
    per token, or [H], a constant per head) it is Gated DeltaNet. Each step
    replaces the value the state holds for key `k_t` by `v_t` in proportion
    `beta_t`; the recurrence is stable when `||k_t|| <= 1` and
    `0 <= beta_t <= 1` (the usual l2-normalized keys and sigmoid betas),
    which the op does not enforce.

    Shapes: q and k `[B, H, N, D]`, v `[B, HV, N, Dv]`, beta `[B, HV, N]`
    (any float type), o `[B, HV, N, Dv]` (v's element type). HV is a
    multiple of H: each q/k head serves HV / H value heads, each with its
    own state, betas and gates (grouped value heads, as in Gated DeltaNet
    models with more value than key heads). The gates are `[B, HV, N]` or
    `[HV]`. An `initial_state` `[B, HV, D, Dv]` (f32) may be given and the
    final state returned as a second result. `scale` defaults to 1. The CPU lowerings are the
    recurrence (`attn-tile{linear-form=recurrent}` and the reference) and a
    chunked form (`schedule`'s `block_q` is the chunk length, default 64)
    that solves each chunk's unit-lower-triangular system by forward
    substitution (the WY / UT form of Yang et al., 2024).

    ```mlir
    %o = attn.delta_rule %q, %k, %v, %beta decay(%g : tensor<?x4x?xf32>)
      {scale = 0.125 : f32}
      : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>,
        tensor<?x4x?xf32> -> tensor<?x4x?x64xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$q, AnyRankedTensor:$k,
                       AnyRankedTensor:$v, AnyRankedTensor:$beta,
                       Optional<AnyRankedTensor>:$decay,
                       Optional<AnyRankedTensor>:$initial_state,
                       OptionalAttr<F32Attr>:$scale,
                       OptionalAttr<Attn_ScheduleAttr>:$schedule);
  let results = (outs AnyRankedTensor:$o,
                      Optional<AnyRankedTensor>:$final_state);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $beta
    (`decay` `(` $decay^ `:` type($decay) `)`)?
    (`initial_state` `(` $initial_state^ `:` type($initial_state) `)`)?
    attr-dict `:` type($q) `,` type($k) `,` type($v) `,` type($beta) `->`
    type(results)
  }];
  let extraClassDeclaration = [{
    float getEffectiveScale() {
      return getScale() ? getScale()->convertToFloat() : 1.0f;
    }
  }];
  let hasVerifier = 1;
}

def Attn_DeltaRuleGradOp : Attn_Op<"delta_rule_grad",
    [Pure, AttrSizedOperandSegments, AttrSizedResultSegments]> {
  let summary = "Backward pass of the delta rule";
  let description = [{
    The gradients of an `attn.delta_rule` with respect to q, k, v, beta,
    the log-gates and the initial state, given the output gradient `dO` and
    optionally the final state's gradient. Usually made by
    `attn-differentiate`. Writing one step as `w_t = S_{t-1}^T k_t`,
    `u_t = beta_t (v_t - a_t w_t)`, `S_t = a_t S_{t-1} + k_t u_t^T`, the
    reverse sweep carries `dS` (from the final state's gradient, or 0):

    ```
    dS += scale q_t dO_t^T;   dq_t = scale S_t dO_t
    du = dS^T k_t;   dk_t = dS u_t + S_{t-1} dw;   dv_t = beta_t du
    dw = -a_t beta_t du;   dbeta_t = du . (v_t - a_t w_t)
    dg_t = a_t (<dS, S_{t-1}> - beta_t du . w_t)
    dS <- a_t dS + k_t dw^T
    ```

    The CPU lowering stores the state at the start of every chunk (the
    schedule's `block_q`, default 64) during a forward sweep and recomputes
    each chunk's states from it in the reverse sweep: O(N / C + C) states
    of `D x Dv` per head, f64 accumulation. Per-head decays get
    `dg_h = sum_t dg_t` over batches and tokens; dq and dk sum over the
    value heads that share a q/k head.

    Operands: q, k, v, beta, dO, then the optional `decay(...)`,
    `initial_state(...)` and `final_state_grad(...)`. Results: dq, dk, dv,
    dbeta (the types of q, k, v, beta), then the decay's gradient
    (`decay_grad`) when there is a decay and the initial state's
    (`initial_state_grad`) when there is one.

    ```mlir
    %dq, %dk, %dv, %db, %dg = attn.delta_rule_grad %q, %k, %v, %beta, %do
        decay(%g : tensor<?x4x?xf32>)
      : tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>,
        tensor<?x4x?xf32>, tensor<?x4x?x64xf32>
      -> tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>, tensor<?x4x?x64xf32>,
         tensor<?x4x?xf32> decay_grad tensor<?x4x?xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$q, AnyRankedTensor:$k,
                       AnyRankedTensor:$v, AnyRankedTensor:$beta,
                       AnyRankedTensor:$d_o,
                       Optional<AnyRankedTensor>:$decay,
                       Optional<AnyRankedTensor>:$initial_state,
                       Optional<AnyRankedTensor>:$d_final_state,
                       OptionalAttr<F32Attr>:$scale,
                       OptionalAttr<Attn_ScheduleAttr>:$schedule);
  let results = (outs AnyRankedTensor:$dq, AnyRankedTensor:$dk,
                      AnyRankedTensor:$dv, AnyRankedTensor:$d_beta,
                      Optional<AnyRankedTensor>:$d_decay,
                      Optional<AnyRankedTensor>:$d_initial_state);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $beta `,` $d_o
    (`decay` `(` $decay^ `:` type($decay) `)`)?
    (`initial_state` `(` $initial_state^ `:` type($initial_state) `)`)?
    (`final_state_grad` `(` $d_final_state^ `:` type($d_final_state) `)`)?
    attr-dict `:` type($q) `,` type($k) `,` type($v) `,` type($beta) `,`
    type($d_o) `->` type($dq) `,` type($dk) `,` type($dv) `,` type($d_beta)
    (`decay_grad` type($d_decay)^)?
    (`initial_state_grad` type($d_initial_state)^)?
  }];
  let extraClassDeclaration = [{
    float getEffectiveScale() {
      return getScale() ? getScale()->convertToFloat() : 1.0f;
    }
  }];
  let hasVerifier = 1;
}

def Attn_CombineStatesOp : Attn_Op<"combine_states", [Pure]> {
  let summary = "Fold the gathered states of sequence-parallel ranks (LASP-2)";
  let description = [{
    The state-combine step of sequence-parallel linear attention
    (`attn-sequence-parallel`). `states` holds one `[B, H, F, Dv]` state per
    rank, `[W, B, H, F, Dv]` f32 (gathered from all W ranks), and
    `log_decays` each rank's total log-decay: `[W, B, H]` (one gate per
    head and rank) or `[W, B, H, F]` (per feature, GLA-style gates), f32.
    With `T_i` rank i's log-decay, rank `r` gets

    ```
    prefix:  sum_{j < r} exp(sum_{j < i < r} T_i) * states[j]
    suffix:  sum_{j > r} exp(sum_{r < i < j} T_i) * states[j]
    ```

    (per feature row for `[W, B, H, F]` decays): `prefix` is the state
    entering rank r's chunk of a causal scan (the forward), `suffix` the
    gradient of the state leaving it (the backward, from the ranks after).
    A rank at or past W combines the ranks below W.

    ```mlir
    %p = attn.combine_states prefix %states, %decays at %rank
      : tensor<?x?x4x64x64xf32>, tensor<?x?x4xf32> -> tensor<?x4x64x64xf32>
    ```
  }];
  let arguments = (ins Attn_StateCombineAttr:$kind, AnyRankedTensor:$states,
                       AnyRankedTensor:$log_decays, Index:$rank);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $kind $states `,` $log_decays `at` $rank attr-dict `:` type($states) `,`
    type($log_decays) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Attn_YieldOp : Attn_Op<"yield", [
    Pure, Terminator, ReturnLike,
    ParentOneOf<["AttentionOp", "AttentionGradOp", "LinearAttentionOp",
                 "LinearAttentionGradOp", "ScanOp"]>]> {
  let summary = "Yields the value of an attn region";
  let description = [{
    Terminates the `score`, `mask` and feature-map regions.

    ```mlir
    attn.yield %r : f32
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
  let builders = [OpBuilder<(ins), [{ /* nothing */ }]>];
}

#endif // ATTN_OPS_TD

// RUN: attn-opt %s -split-input-file --attn-sequence-parallel=func=f -verify-diagnostics
// What attn-sequence-parallel cannot split yet is named on the function.

// expected-error @+1 {{attn-sequence-parallel: function 'f' is bidirectional: the bidirectional LASP-2 form}}
func.func @f(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
             %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.scan bidirectional %q, %k, %v
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}

// -----

// expected-error @+1 {{function 'f' divides by a normalizer (normalize)}}
func.func @f(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
             %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.linear_attention causal %q, %k, %v normalize
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}

// -----

// expected-error @+1 {{function 'f' takes an initial state}}
func.func @f(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
             %v: tensor<?x2x?x16xf32>, %s0: tensor<?x2x16x16xf32>)
    -> tensor<?x2x?x16xf32> {
  %o = attn.scan causal %q, %k, %v initial_state(%s0 : tensor<?x2x16x16xf32>)
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}

// -----

// expected-error @+1 {{function 'f' uses the attn op's results in other operations}}
func.func @f(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
             %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.scan causal %q, %k, %v
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  %r = arith.addf %o, %o : tensor<?x2x?x16xf32>
  return %r : tensor<?x2x?x16xf32>
}

// -----

// expected-error @+1 {{function 'f' has no single attn.linear_attention or attn.scan to split}}
func.func @f(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
             %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.attention %q, %k, %v
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}

// -----

// expected-error @+1 {{'f_lasp_state' already exists}}
func.func @f(%q: tensor<?x2x?x16xf32>, %k: tensor<?x2x?x16xf32>,
             %v: tensor<?x2x?x16xf32>) -> tensor<?x2x?x16xf32> {
  %o = attn.scan causal %q, %k, %v
    : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
      -> tensor<?x2x?x16xf32>
  return %o : tensor<?x2x?x16xf32>
}
func.func @f_lasp_state() {
  return
}

// -----

// expected-error @+1 {{attn-sequence-parallel: no function 'f'}}
module {
}

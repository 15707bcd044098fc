"""Traced FlexAttention mods and a traced linear-attention feature map,
compiled for the GPU targets (sm_80, sm_90a) on a machine without a GPU:
the spec writer's output (i64/i32/f32/i8 captures, clamped static reads,
signed comparisons, select-to--inf scores, GQA, lse, vector feature maps)
must pass the GPU code generators and ptxas; so must the backward
(<f>_backward) of three of them, whose capture gradients must map to the
captured float tensors. Prints KERNEL/FAIL lines and
`FAILURES <n>`.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import attnc  # noqa: E402
from attnc import _linear, _trace  # noqa: E402

fails = 0
doc_ids = np.sort(np.random.randint(0, 4, 256)).astype(np.int64)
slopes = np.exp2(-np.arange(1, 9)).astype(np.float32)
bias = np.zeros((8, 255), np.float32)
layout = np.ones((4, 4), bool)


def document(b, h, q_idx, kv_idx):
    return (doc_ids[q_idx] == doc_ids[kv_idx]) & (q_idx >= kv_idx)


def alibi(score, b, h, q_idx, kv_idx):
    return score - slopes[h] * (q_idx - kv_idx)


def relative(score, b, h, q_idx, kv_idx):
    return score + bias[h, q_idx - kv_idx + 127]


def softcap(score, b, h, q_idx, kv_idx):
    return 20.0 * np.tanh(score / 20.0)


def softcap_window(score, b, h, q_idx, kv_idx):
    return np.where(abs(q_idx - kv_idx) > 100, -float("inf"), 20.0 * np.tanh(score / 20.0))


def blocks(b, h, q_idx, kv_idx):
    return layout[q_idx // 64, kv_idx // 64]


def natten(b, h, q_idx, kv_idx):
    return (abs(q_idx // 32 - kv_idx // 32) <= 2) & (abs(q_idx % 32 - kv_idx % 32) <= 2)


def compile_all(name, spec, function=None):
    """function: e.g. <f>_backward (attn-differentiate in attnc.compile); the
    line then names the input each gradient is shaped like."""
    global fails
    for target in ("sm_80", "sm_90a"):
        try:
            kernel = attnc.compile(spec, target, function=function)
            grads = ""
            if kernel.kind == "attention_grad":
                grads = " " + " ".join(f"{p['name']}~{kernel.names[i]}"
                                       for p, i in zip(kernel.outputs, kernel._out_like))
            print(f"KERNEL {name} {target}: {kernel}{grads}", flush=True)
        except attnc.AttncError as e:
            fails += 1
            print(f"FAIL {name} {target}: " + str(e).replace("\n", "\n  | "), flush=True)


def main():
    cases = {
        "document_alibi": (alibi, document, {}),
        "relative_lse": (relative, None, {"return_lse": True}),
        "softcap_blocks_gqa": (softcap, blocks, {"Hkv": 2}),
        "softcap_window_gqa": (softcap_window, None, {"Hkv": 2}),
        # tanh with a -inf select in the score together with a mask that
        # reads a captured tensor: the block map evaluates the -inf
        # condition at s = 0 (this used to end the process with LLVM's
        # "constraint 'n' expects an integer constant expression";
        # flex_gpu_select_layout.test).
        "softcap_window_blocks": (softcap_window, blocks, {}),
        "natten_d128": (None, natten, {"D": 128}),
    }
    for name, (score_mod, mask_mod, kwargs) in cases.items():
        kwargs.setdefault("D", 64)
        spec = attnc.trace(score_mod, mask_mod, H=8, dtype="bf16", **kwargs)
        compile_all(name, spec)
        if name in ("document_alibi", "relative_lse", "softcap_blocks_gqa"):
            # flex_attention's backward (python/attnc/_autograd.py).
            compile_all(name + "_backward", spec, spec.function + "_backward")

    def elu1(x):
        return np.where(x > 0, x + 1.0, np.exp(x))

    phi = _trace.trace_mod(elu1, "feature_map")
    compile_all("linear_elu", _linear.emit_linear_spec("linear_elu", phi, 4, 64, 64, "bf16",
                                                       0.125, True, True, None, False, False))
    print(f"FAILURES {fails}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())

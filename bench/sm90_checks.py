"""Step checks of the sm_90a plan (docs/notes/sm90a-plan.md, section 8) on
the GPU machine (torch, the CUDA driver; no MLIR). The kernels are built here
by bench/prepare_device.sh into devcarry/sm90/.

Step 1, TMA copy (test/Integration/sm90/tma_copy.mlir): a 2-D bf16 tensor
map with a 128-row x 64-column box and 128B swizzle, passed by value; the
kernel copies its 32 KB of dynamic shared memory out. Expected: 16-byte
chunk c of row r of box t sits at t*16384 + r*128 + (c ^ (r % 8))*16; rows
past the end are zero.
  python3 bench/sm90_checks.py devcarry/sm90"""
import ctypes
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from attnc import _driver  # noqa: E402

CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 = 9
CU_TENSOR_MAP_SWIZZLE_128B = 3


def encode_2d(t, box_cols, box_rows):
    """A CUtensorMap (128 bytes, 64-byte aligned) for a row-major 2-D tensor."""
    raw = ctypes.create_string_buffer(128 + 128)
    addr = (ctypes.addressof(raw) + 127) // 128 * 128
    rows, cols = t.shape
    dims = (ctypes.c_uint64 * 2)(cols, rows)
    strides = (ctypes.c_uint64 * 1)(t.stride(0) * t.element_size())
    box = (ctypes.c_uint32 * 2)(box_cols, box_rows)
    elem = (ctypes.c_uint32 * 2)(1, 1)
    fn = _driver.lib().cuTensorMapEncodeTiled
    _driver.check(fn(ctypes.c_void_p(addr), CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2,
                     ctypes.c_void_p(t.data_ptr()), dims, strides, box, elem,
                     0, CU_TENSOR_MAP_SWIZZLE_128B, 0, 0),
                  "cuTensorMapEncodeTiled")
    return raw, addr


def launch(fn, grid, block, params, smem):
    """cuLaunchKernel with dynamic shared memory; params: (ctypes value or
    raw address) list."""
    ptrs = (ctypes.c_void_p * len(params))()
    for i, p in enumerate(params):
        ptrs[i] = p if isinstance(p, int) else ctypes.addressof(p)
    s = torch.cuda.current_stream().cuda_stream
    _driver.check(_driver.lib().cuLaunchKernel(fn, *grid, *block, smem, ctypes.c_void_p(s),
                                               ptrs, None), "cuLaunchKernel")


def step1(directory):
    with open(os.path.join(directory, "tma_copy.cubin"), "rb") as f:
        mod = _driver.load_module(f.read())
    fn = _driver.get_function(mod, "tma_copy")
    fails = 0
    for rows, row0 in ((256, 0), (200, 128), (200, 100)):
        x = torch.randn(rows, 128, device="cuda", dtype=torch.bfloat16)
        out = torch.full((32768,), 0x5A, device="cuda", dtype=torch.uint8)
        _keep, map_addr = encode_2d(x, 64, 128)
        ptr = ctypes.c_void_p(out.data_ptr())
        params = [map_addr, ptr, ctypes.c_void_p(out.data_ptr()), ctypes.c_int64(0),
                  ctypes.c_int64(out.numel()), ctypes.c_int64(1), ctypes.c_int64(row0)]
        launch(fn, (1, 1, 1), (128, 1, 1), params, 32768)
        torch.cuda.synchronize()
        got = out.cpu().numpy()
        src = torch.zeros(row0 + 128, 128, dtype=torch.bfloat16)
        n = min(rows, row0 + 128)
        src[:n] = x[:n].cpu()
        raw = src[row0:row0 + 128].contiguous().view(torch.uint8).numpy()  # [128, 256] bytes
        want = bytearray(32768)
        for t in range(2):
            for r in range(128):
                for c in range(8):
                    chunk = raw[r, t * 128 + c * 16:t * 128 + c * 16 + 16].tobytes()
                    off = t * 16384 + r * 128 + (c ^ (r % 8)) * 16
                    want[off:off + 16] = chunk
        ok = bytes(got) == bytes(want)
        if not ok:
            plain = bytearray(32768)
            for t in range(2):
                for r in range(128):
                    plain[t * 16384 + r * 128:t * 16384 + r * 128 + 128] = raw[r, t * 128:t * 128 + 128].tobytes()
            hint = "(matches the unswizzled layout)" if bytes(got) == bytes(plain) else ""
            bad = sum(a != b for a, b in zip(got, want))
            print(f"FAIL step1 tma_copy rows={rows} row0={row0}: {bad} bytes differ {hint}")
        else:
            print(f"PASS step1 tma_copy rows={rows} row0={row0}")
        fails += not ok
    return fails


def main():
    torch.cuda.init()
    torch.zeros(1, device="cuda")  # a current context
    print(torch.cuda.get_device_name(), torch.cuda.get_device_capability())
    fails = step1(sys.argv[1])
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())

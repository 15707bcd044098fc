"""Prints attnc.__version__ next to the C API's attnc_version(), read here
through ctypes directly (not through the package), for version.test."""
import ctypes
import os

import attnc

lib = ctypes.CDLL(os.path.join(os.environ["ATTNC_LIB_DIR"], "libattnc.so"))
lib.attnc_version.restype = ctypes.c_char_p
capi = lib.attnc_version().decode()
print(f"python attnc.__version__ {attnc.__version__}")
print(f"C API attnc_version() {capi}")
print(f"attnc.version() {attnc.version()}")

"""Builds the attnc wheel (pyproject.toml says how): the package plus the
native libraries from $ATTNC_LIB_DIR, a platform wheel whose version is the
one libattnc.so reports. Without ATTNC_LIB_DIR (or with the libraries
missing there) it stops with an error naming what it looked for."""
import ctypes
import os
import shutil
import sys

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

LIBS = ("libattnc.so", "libattnc_runtime.so")


def lib_dir():
    d = os.environ.get("ATTNC_LIB_DIR")
    if not d:
        sys.exit("attnc wheel: set ATTNC_LIB_DIR to the lib directory of an installed "
                 "attnc (cmake --install build --prefix P; then P/lib)")
    missing = [lib for lib in LIBS if not os.path.isfile(os.path.join(d, lib))]
    if missing:
        sys.exit(f"attnc wheel: {', '.join(missing)} not found in ATTNC_LIB_DIR={d}")
    return d


def version():
    """X.Y.Z of libattnc.so's attnc_version() ("attnc X.Y.Z (...)"), as
    attnc.__version__ reads it."""
    lib = ctypes.CDLL(os.path.join(lib_dir(), "libattnc.so"))
    lib.attnc_version.restype = ctypes.c_char_p
    parts = lib.attnc_version().decode().split()
    if len(parts) < 2 or parts[0] != "attnc":
        sys.exit(f"attnc wheel: unexpected attnc_version() {' '.join(parts)!r}")
    return parts[1]


class BundleLibraries(build_py):
    """build_py, then the native libraries into the built package."""

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "attnc")
        for lib in LIBS:
            shutil.copy2(os.path.join(lib_dir(), lib), os.path.join(target, lib))


class BinaryDistribution(Distribution):
    """A platform wheel: the package carries shared libraries."""

    def has_ext_modules(self):
        return True


setup(version=version(), cmdclass={"build_py": BundleLibraries},
      distclass=BinaryDistribution)

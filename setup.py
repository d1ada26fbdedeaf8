"""Build script for the optional C accelerators (everything else is in pyproject.toml).

Each accelerator is optional: without a C compiler (or Python headers) the build goes on
without it and the pure-Python functions it accelerates run (docs/design.md section 6;
WINAIO_PURE_PYTHON=1 selects them at run time). CI sets WINAIO_REQUIRE_ACCEL=1, under which
the tests fail when one was not built. To add one: a (module, sources, headers) entry below.
"""

from glob import glob

from setuptools import Extension, setup

ACCELERATORS = [
    # the cached-read fast path (DiskFile.read_now/start_read, win32 ReadFile/GQCSEx hot
    # shapes: _fastio.c, _fastio_win32.c) and the sockets' paths (_fastsock*.c, ...): one
    # module, every src/winaio/_io/_fast*.c source
    (
        "winaio._io._fastio",
        sorted(glob("src/winaio/_io/_fast*.c")),
        sorted(glob("src/winaio/_io/_fast*.h")),
    ),
]

setup(
    ext_modules=[
        Extension(
            name,
            sources,
            depends=headers,
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
        for name, sources, headers in ACCELERATORS
    ]
)

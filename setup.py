"""Build script for the optional C accelerator (everything else is in pyproject.toml).

``winaio._io._fastio`` is optional: without a C compiler (or Python headers) the build goes
on without it and the pure-Python methods run (docs/design.md "Cached reads", section 6).
CI sets WINAIO_REQUIRE_ACCEL=1, under which a test fails when it was not built.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "winaio._io._fastio",
            ["src/winaio/_io/_fastio.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)

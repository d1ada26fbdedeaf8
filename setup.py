"""Build script for the optional C accelerators (everything else is in pyproject.toml).

Each extension is optional: without a C compiler (or Python headers) the build goes on without
it and the pure-Python code runs (docs/design.md, section 6).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "winaio._backends.uring._lines",
            ["src/winaio/_backends/uring/_lines.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)

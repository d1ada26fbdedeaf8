"""I/O drivers behind one small interface.

- ``_uring_abi`` (with ``_uring_structs``): the raw io_uring ABI, i.e. ctypes structures,
  syscalls 425-427, the mmap'd rings, SQE preparation, CQE reaping and ``probe()``. No policy,
  no threads, not thread-safe on its own.

Backends (the io_uring backend and the thread-pool fallback) and ``select_backend()`` will
live here too; nothing in this package is public.
"""

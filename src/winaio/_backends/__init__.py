"""I/O drivers behind one small interface. Nothing in this package is public.

Both backends implement ``winaio._io._backend.Backend``; ``winaio._runtime`` is the only module
that imports them and picks one:

- ``uring``: io_uring. ``uring.abi`` is the raw io_uring ABI (``Ring``, the ``prep_*`` SQE
  writers, submit/wait/reap, register, ``probe()``; no policy, no threads), split the way
  liburing splits its own code; the rest of ``uring`` is the backend (``IoUringBackend``):
  submissions by its own ring thread, or by the kernel's SQ poller for deep FILE queues.
- ``_threads``: a worker pool for file requests and an epoll reactor for streams.

Neither imports the Win32 alias layer, the RPC runtime or asyncio (import-linter contracts).
"""

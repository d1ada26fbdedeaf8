"""I/O drivers behind one small interface. Nothing in this package is public.

The raw io_uring ABI (no policy, no threads, not thread-safe on its own):

- ``_uring_abi``: ``Ring`` (io_uring_setup/enter/register, the mmap'd rings, submit, wait,
  reap, eventfd and file registration) and ``probe()``; its docstring holds the io_uring facts
  the layer relies on.
- ``_uring_prep``: the ``prep_*`` SQE field setters that ``Ring`` mixes in.
- ``_uring_cq``: the CQE reader (``reap``, ``peek_cqe``, ``cq_advance``) that ``Ring`` mixes in.
- ``_uring_sys``: what a ring stands on in the process: libc's ``syscall()``, syscall numbers,
  mmap offsets, the full fence, ``RingBusyError``, and why io_uring is refused here.
- ``_uring_structs``: ctypes structures (io_uring_params, iovec, msghdr, sockaddr, timespec)
  and stable addresses for Python buffers, with their keepalive objects.
- ``_uring_consts``: the uapi constants under their ``<linux/io_uring.h>`` names.

The backends (both implement ``winaio._io._backend.Backend``; ``winaio._runtime`` picks one):

- ``_uring`` (+ ``_uring_sqpoll``, ``_uring_streams``, ``_uring_close``, ``_uring_ring``,
  ``_uring_probe``): io_uring; submissions by its own ring thread, or by the kernel's SQ
  poller for deep FILE queues.
- ``_threads``: a worker pool for file requests and an epoll reactor for streams.
"""

"""Kernel objects, waits and APCs: pure threading, no I/O, no asyncio."""

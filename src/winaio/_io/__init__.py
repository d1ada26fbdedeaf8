"""The overlapped I/O model, independent of any backend (win32-async-spec §1.4-1.5, §4-8, §10)."""

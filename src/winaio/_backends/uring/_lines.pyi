from typing import Any

def service_direct(
    lock: Any,
    lines: dict[int, Any],
    spare: list[Any],
    spare_max: int,
    heads: list[tuple[Any, int, int]],
    finished: list[tuple[Any, int, int]],
    read_from_cqe: object,
    success: int,
    /,
) -> list[tuple[Any, int]] | Any: ...  # NotImplemented: containers left to Python

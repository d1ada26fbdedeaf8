"""``python -m winaio``: see ``winaio._cli``."""

from __future__ import annotations

from ._cli import main

raise SystemExit(main())

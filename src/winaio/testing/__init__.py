"""Public test helpers (deterministic clocks, wait-until-idle helpers). Only tests import this."""

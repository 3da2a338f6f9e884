"""mloop: the whole ML lifecycle as one closed loop."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

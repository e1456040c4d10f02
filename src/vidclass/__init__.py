"""vidclass: video classification and human action recognition on a CPU laptop."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

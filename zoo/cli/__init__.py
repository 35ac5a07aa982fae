"""The `zoo` command."""
from .main import console, main, parser

__all__ = ["console", "main", "parser"]

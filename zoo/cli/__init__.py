"""The `zoo` command."""
from .main import main, parser

__all__ = ["main", "parser"]

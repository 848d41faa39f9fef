"""``digits-eval`` / ``python -m evaluation``: see :mod:`evaluation.cli`."""

import sys

from evaluation.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())

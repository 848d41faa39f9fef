"""``digits-client`` / ``python -m clients``: see :mod:`clients.cli.main`."""

import sys

from clients.cli.main import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())

"""Optional dependencies of the clients: fail with the extra to install, not a traceback."""

from __future__ import annotations

import importlib.util

from clients.connection import ClientError

PLOT_EXTRA = "digits-server[plot]"


def require_plotting(what: str) -> None:
    """Raise :class:`ClientError` naming the ``plot`` extra when matplotlib is missing.

    Checked before any request is sent, so a missing extra costs no server work.
    """
    if importlib.util.find_spec("matplotlib") is None:
        raise ClientError(
            f"{what} draws with matplotlib, which is not installed; "
            f"install the plot extra: pip install '{PLOT_EXTRA}'"
        )

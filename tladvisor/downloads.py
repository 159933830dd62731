"""Exports (the runs table, a run's trained head) made only when a signed-in session asks, and
dropped from the server soon after.

Streamlit serves a download button's file at ``/media/<id>``, a plain HTTP endpoint outside the
page gate (``tladvisor.auth``): a file handed to ``st.download_button`` up front is there, for
anyone holding its URL, cookie or not, for as long as a page shows the button. ``on_click()``
hands the button a callable instead, so nothing is under ``/media`` until someone clicks, and
only a signed-in session is drawn a button to click. The file the click makes is swept within
``EXPORT_SECONDS``. The reverse proxy of docs/deploy.md closes ``/media`` to signed-out clients
altogether.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

EXPORT_SECONDS = 30.0  # how long a made export stays fetchable: the browser asks for it at once


def on_click(make: Callable[[], bytes]) -> Callable[[], bytes]:
    """``make`` as ``st.download_button``'s ``data``: called when the button is clicked, and
    the file it makes is removed from the server ``EXPORT_SECONDS`` later."""

    def generate() -> bytes:
        content = make()
        sweep_later()
        return content

    return generate


def sweep_later(seconds: float = EXPORT_SECONDS) -> None:
    """Remove every export no page holds any more, ``seconds`` from now.

    Streamlit keeps a made export unreferenced (a second click makes it again) and deletes an
    unreferenced download at its second sweep, the first only marking it, so two sweeps run: half
    way, and at ``seconds``. (Streamlit also sweeps after every page run, which may drop it
    sooner; the browser has fetched it by then.)
    """
    for delay in (seconds / 2, seconds):
        timer = threading.Timer(delay, _sweep)
        timer.daemon = True  # never holds up a server shutdown
        timer.start()


def _sweep() -> None:
    from streamlit import runtime

    if runtime.exists():  # not under AppTest's bare script runner, nor after shutdown
        runtime.get_instance().media_file_mgr.remove_orphaned_files()

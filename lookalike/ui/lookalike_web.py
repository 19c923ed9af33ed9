"""The web app as ``lookalike ui`` serves it: the pages of ``app.py`` in a Streamlit
``st.App``, behind one middleware that answers 404 to what Streamlit would otherwise show
any client without a login.

``/_stcore/metrics`` (Streamlit's OpenMetrics: sessions, cache sizes, per-page counts) has
no setting to turn it off in the Streamlit this project uses, and answers everyone; the web
app's people have no use for it. ``streamlit run`` recognises the ``app`` below and serves
it with uvicorn, with every ``--server.*`` option as before.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from starlette.middleware import Middleware

HIDDEN = ("/_stcore/metrics",)  # paths (after any --server.baseUrlPath) nobody is served


class HideInternals:
    """A plain ASGI middleware: a request for a :data:`HIDDEN` path gets a bare 404, the
    same answer as a path that does not exist; everything else passes through."""

    def __init__(self, app: Any) -> None:  # noqa: ANN401 - any ASGI application
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:  # noqa: ANN401 - the ASGI protocol
        path = str(scope.get("path", "")).rstrip("/")
        if scope.get("type") == "http" and any(path.endswith(h) for h in HIDDEN):
            from starlette.responses import PlainTextResponse

            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


app = st.App("app.py", middleware=[Middleware(HideInternals)])

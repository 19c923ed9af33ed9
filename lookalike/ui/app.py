"""lookalike's web app: started by ``lookalike ui [--db URL] [--port N]``.

One script for Streamlit to run; each page is its own module beside it.
"""

from __future__ import annotations

import streamlit as st

from lookalike import logs
from lookalike.ui import common
from lookalike.ui.settings import visitor_only

st.set_page_config(page_title="lookalike — who looks like me?", page_icon=":material/face:", layout="wide")
# the level `lookalike -v ui` exported (idempotent: every run of the script may call it)
common.setting(logs.inherit)

visitor = [
    st.Page("find.py", title="Find someone like me", icon=":material/search:", default=True),
    st.Page("live.py", title="Live", icon=":material/videocam:"),
    st.Page("role_models.py", title="Role models", icon=":material/star:"),
]
# operator pages: behind the operator's password or an admin key (gate.operator_gate), and
# not served at all by a kiosk or public site (lookalike ui --visitor-only)
operator = [
    st.Page("explore.py", title="Explore", icon=":material/explore:"),
    st.Page("admin.py", title="Admin", icon=":material/admin_panel_settings:"),
]
pages = st.navigation(visitor if common.setting(visitor_only) else visitor + operator)
pages.run()

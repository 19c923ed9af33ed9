"""lookalike's web app: started by ``lookalike ui [--db URL] [--port N]``.

One script for Streamlit to run; each page is its own module beside it.
"""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="lookalike — who looks like me?", page_icon=":material/face:", layout="wide")

pages = st.navigation([
    st.Page("find.py", title="Find someone like me", icon=":material/search:", default=True),
    st.Page("live.py", title="Live", icon=":material/videocam:"),
    st.Page("role_models.py", title="Role models", icon=":material/star:"),
    st.Page("explore.py", title="Explore", icon=":material/explore:"),
])
pages.run()

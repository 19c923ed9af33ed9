"""The operator's door: Explore and Admin show nothing of the library (no person, photo,
path or database URL) until a browser session gave the operator's password or an admin
API key, with wrong tries slowed down across every session of the server
(:mod:`lookalike.ui.throttle`). Its own module (architecture review 56, M8c: it was part
of the pages' shared grab-bag, :mod:`lookalike.ui.common`).
"""

from __future__ import annotations

import logging
import math

from lookalike.ui.common import check_settings, library, setting
from lookalike.ui.settings import operator_password
from lookalike.ui.throttle import Throttle, client_key

# wrong operator passwords, per client address, across every session of this server
LOGIN_THROTTLE = Throttle()


def same_secret(given: str, expected: str) -> bool:
    """Whether two secrets are equal, in a time that tells nothing of either: their
    SHA-256 digests (always 32 bytes, so not even the length shows) compared by
    :func:`hmac.compare_digest`."""
    import hashlib
    import hmac

    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())


def _is_operator(given: str, password: str | None) -> bool:
    from lookalike.errors import LookalikeError
    from lookalike.store.values import KeyScope

    if password and same_secret(given, password):
        return True
    try:
        return library().keys.scope(given) is KeyScope.admin
    except LookalikeError as err:  # a broken library is not a wrong password: the operator's log says so
        logging.getLogger(__name__).error("the operator's key could not be checked: %s", err)
        return False


def operator_gate() -> None:
    """Operator pages (Explore, Admin) show nothing of the library (no person, photo, path
    or database URL) until this browser session gave the operator's password or an admin
    API key; then they stay open for the session."""
    import streamlit as st

    check_settings()
    if st.session_state.get("lk_operator"):
        return
    password = setting(operator_password)
    st.info("This page is for the people who run this collection: give the operator's password "
            "(LOOKALIKE_UI_PASSWORD) or an admin API key.")
    with st.form("operator"):
        given = st.text_input("Operator password or admin API key", type="password", key="operator_secret")
        opened = st.form_submit_button("Open")
    if opened:
        client = client_key(st.context.ip_address)
        wait = LOGIN_THROTTLE.wait(client)
        if wait > 0:  # not checked at all: a right guess now would open nothing and tell nothing
            st.error(f"Too many wrong tries from your address: try again in {math.ceil(wait)} s.")
            st.stop()
        if given and _is_operator(given.strip(), password):
            LOGIN_THROTTLE.succeeded(client)
            st.session_state["lk_operator"] = True
            st.rerun()
        wait = LOGIN_THROTTLE.failed(client)
        later = f" Wait {math.ceil(wait)} s before the next try." if wait > 0 else ""
        st.error("That is neither the operator's password nor an admin API key." + later)
    st.stop()

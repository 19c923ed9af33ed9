"""Role models: a kiosk for recruitment outreach.

A visitor reads what happens and agrees before the camera starts; one photo is compared
with the role models who consented to be displayed (``consent_display``); the three most
similar are shown with their role, organisation and story. The visitor may narrow the
choice to self-declared tags (never to estimated gender, age or ethnicity: nothing is
estimated here). The screen goes back to the start by itself after ``LOOKALIKE_KIOSK_IDLE``
seconds without a touch; nothing is stored.
"""

from __future__ import annotations

import time

import streamlit as st

from lookalike.ui import common
from lookalike.ui.settings import idle_seconds

common.style(kiosk=True)
IDLE_SECONDS = common.setting(idle_seconds)  # read on every run of the page
lib = common.ready_library()
state = st.session_state
state.setdefault("kiosk_stage", "consent")
state.setdefault("kiosk_round", 0)  # a new round gives the widgets new keys: photo and choices are gone


def reset() -> None:
    state["kiosk_stage"] = "consent"
    state["kiosk_round"] += 1


def idle() -> bool:
    return state["kiosk_stage"] != "consent" and time.time() - state.get("kiosk_touched", 0.0) > IDLE_SECONDS


if idle():  # the visitor walked away; whoever touches the screen next starts over
    reset()
state["kiosk_touched"] = time.time()  # every full run of the page is a visitor's touch


@st.fragment(run_every=5)
def idle_watch() -> None:
    """Back to the start when nobody touched the screen for IDLE_SECONDS."""
    if idle():
        reset()
        st.rerun()


idle_watch()

if state["kiosk_stage"] == "consent":
    st.title("Who here looks like you?")
    st.markdown(
        "Meet people who serve in this organisation and who look like you.\n\n"
        "**Before the camera starts:**\n"
        "- The camera takes **one photo** when you press the button.\n"
        "- Your face is compared with role models **who agreed to be shown here**.\n"
        "- Your photo is used in memory only: **never saved**, not on this kiosk and not anywhere else.\n"
        "- Nothing about you is guessed: you may choose what to narrow the role models by.\n"
        f"- The screen starts over by itself after {IDLE_SECONDS:.0f} seconds without a touch.")
    if st.button("I agree — start the camera", type="primary"):
        state["kiosk_stage"] = "camera"
        st.rerun()
    st.stop()

from lookalike.errors import BadImage, LookalikeError, NoFace  # noqa: E402
from lookalike.query.search import Filter, FilterKey  # noqa: E402
from lookalike.store.values import Audience  # noqa: E402

round_ = state["kiosk_round"]
st.title("Role models who look like you")
tags = lib.people.display_tags()
chosen = st.multiselect("Show me role models who are … (optional)", tags, key=f"tags-{round_}",
                        format_func=lambda t: t.replace("-", " "), placeholder="anyone") if tags else []
shot, space = st.columns([2, 3], gap="large")
with shot:
    photo = st.camera_input("Look at the camera and press the button", key=f"camera-{round_}")
    st.button("Start over", on_click=reset)
if photo is None:
    st.stop()

try:
    with st.spinner("Finding your role models …"):  # lib.search takes the library's lock itself
        result = lib.search(photo.getvalue(), k=3, per_person=True, audience=Audience.consented,
                            filters=tuple(Filter(FilterKey.tag, t) for t in chosen))
except NoFace:
    space.warning("We could not see a face in that photo. Look straight at the camera in good light and try again.")
    st.stop()
except (BadImage, LookalikeError) as err:
    space.error(f"That did not work: {common.said(err)}")
    st.stop()

found = common.cards(lib, result.faces[0])
with space:
    if not found:
        st.warning("No role model matches these choices yet. Try fewer choices.")
    elif len(found) < 3:
        st.info(f"Only {len(found)} role model{'s match' if len(found) > 1 else ' matches'} these choices.")
    for card in found:
        common.show_card(lib, card, f"## {common.plain(card.name)}", card.words, 320, [1, 2])

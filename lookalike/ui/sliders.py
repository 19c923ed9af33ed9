"""Explore → Face sliders: the corpus's appearance model (``lib.pictures.appearance``: a
PCA of the faces' shapes and shape-normalised textures) as live sliders, one per
component, that draw a face as they move.

The model is fitted once per library *state* (its database and counts, as the other
Explore views) and kept in memory; moving a slider reruns only the slider panel (a
fragment), which draws one frame from the fitted model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from lookalike.errors import LookalikeError
from lookalike.ui import drawn

if TYPE_CHECKING:
    from lookalike.verbs.library import Library
    from lookalike.verbs.pictures import Appearance

FACE_WIDTH = 320  # px, the drawn face on the page
STEP = 0.25  # σ per slider step (a key press)


@st.cache_resource(show_spinner=False, max_entries=4)
def model_of(_lib: Library, state: tuple, components: int) -> Appearance:
    """The appearance model of what the operator sees, fitted once per library state."""
    from lookalike.store.values import Audience

    return drawn.appearance(_lib, components, Audience.operator)


def key(component: int) -> str:
    return f"lk_sigma_{component}"


def reset(count: int) -> None:
    for i in range(count):
        st.session_state[key(i)] = 0.0


def words(sigmas: list[float]) -> str:
    """The slider positions in words: the drawn face's alt text, so it changes as they move."""
    moved = [f"direction {i + 1} at {s:+.2f} σ" for i, s in enumerate(sigmas) if s]
    return "The face the sliders draw: " + ("; ".join(moved) if moved else "the average face")


@st.fragment
def panel(model: Appearance) -> None:
    """The sliders and the face they draw; a slider's move reruns this panel alone."""
    shares = model.shares
    controls, face = st.columns([3, 2], gap="large")
    with controls:
        sigmas = [st.slider(f"Direction {i + 1} · {share:.1%} of the differences", -drawn.SLIDER_SIGMA,
                            drawn.SLIDER_SIGMA, 0.0, STEP, key=key(i), format="%+.2f σ")
                  for i, share in enumerate(shares)]
        st.button("Back to the average face", on_click=reset, args=(len(shares),), key="lk_sigma_reset")
    try:
        image = model.face(sigmas)
    except LookalikeError as err:
        face.error(f"This face cannot be drawn: {err}")
        return
    drawn.inline_png(image, words(sigmas), face, width=FACE_WIDTH)
    face.caption("Drawn by the appearance model, not a photo of anyone: the collection's average face "
                 "moved along the directions set on the left.")


def face_sliders(lib: Library, state: tuple) -> None:
    st.caption("The faces of this collection, taken apart into their main *directions* of difference in "
               "shape and colour (a statistical appearance model). Each slider moves along one direction, "
               "in standard deviations of the collection's faces, and the face on the right is drawn "
               "as you move it. At the middle of every slider is the collection's average face.")
    with st.spinner("Fitting the appearance model (once per change of the collection) …"):
        model = model_of(lib, state, drawn.SLIDERS)
    st.caption(f"Fitted on {model.faces:,} faces (a sample of the collection, odd ones out left out).")
    panel(model)

"""Faces of their own in the web app: average faces, "you ↔ them" morphs and the
appearance model's sliders, all drawn by the library's picture verbs
(:class:`lookalike.verbs.pictures.Pictures`, ``lib.pictures``) and only shown here.

This module is a shell: it picks what to ask for (which photo, which person, which
audience), turns the verbs' RGB arrays into something a browser shows, and words the
errors. No warping, blending or model fitting happens in ``lookalike/ui``.

Privacy: a visitor's morph is made in memory and put in the page itself as a ``data:``
URL (:func:`inline`), like the visitor's photo — never in Streamlit's media store
(``/media/…``), never in a cache shared between sessions, never on disk; the browser
session keeps its own few morphs in its memory (:func:`remembered`) while it lasts.
Averages a visitor sees are asked for with :attr:`Audience.visitor`, so people who
withhold consent are not in them.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import numpy as np

from lookalike.ui import common

if TYPE_CHECKING:
    from streamlit.delta_generator import DeltaGenerator

    from lookalike.store.values import Audience
    from lookalike.verbs.library import Library
    from lookalike.verbs.pictures import Appearance

MORPH_FRAMES = 16  # a card's morph: smooth enough, half the work of the CLI's 24
MORPH_FPS = 8
CARD_SIZE = 256  # px, a card's morph and average face
SLIDER_SIGMA = 3.0  # the sliders go from -3 to +3 standard deviations
SLIDERS = 8  # components offered on the Explore page
MEMO_KEY = "lk_morphs"  # st.session_state: this session's morphs (GIF bytes) by photo, face and match
MEMO_ENTRIES = 8
MARGIN = 0.6  # the visitor's chosen face is cut out with this share of its box around it


# -- pictures to bytes (memory only) ------------------------------------------------------
def inline(data: bytes, mime: str, alt: str, where: DeltaGenerator | None = None, width: int | None = None) -> None:
    """``data`` (a PNG or GIF) in the page itself as a ``data:`` URL: no ``/media/`` URL
    serves it to anyone (:func:`common.inline_image` does the same for photos)."""
    import streamlit as st

    size = f"width:{width}px;max-width:100%" if width else "width:100%"
    src = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    (where or st).html(f'<img src="{src}" alt="{common.html_text(alt)}" class="lk-drawn" '
                       f'style="{size};height:auto;display:block;border-radius:0.5rem">')


def inline_png(image: np.ndarray, alt: str, where: DeltaGenerator | None = None, width: int | None = None) -> None:
    from lookalike.imaging.compose import png_bytes

    inline(png_bytes(image), "image/png", alt, where, width)


# -- what to ask the verbs for --------------------------------------------------------------
def face_region(rgb: np.ndarray, box: tuple[int, int, int, int], margin: float = MARGIN) -> np.ndarray:
    """The part of the visitor's photo round one face (its box grown by ``margin`` of its
    size on every side, clipped to the photo): how the face a visitor chose among several
    becomes the one the morph takes. A view of the array, nothing copied or kept."""
    x, y, w, h = box
    grow = margin * max(w, h)
    top, left = max(0, round(y - grow)), max(0, round(x - grow))
    bottom, right = min(rgb.shape[0], round(y + h + grow)), min(rgb.shape[1], round(x + w + grow))
    return rgb[top:bottom, left:right]


def you_and_them(lib: Library, rgb: np.ndarray, box: tuple[int, int, int, int] | None, face_id: int,
                 frames: int = MORPH_FRAMES) -> list[np.ndarray]:
    """The visitor's face morphing into the matched photo of them: made now, in memory.

    ``box``: the visitor's chosen face when their photo has several (else None: the photo
    as given). The other side is the photo the match came from, as a visitor may see it
    (:meth:`lookalike.verbs.people.People.portrait` with :attr:`Audience.visitor`: cut to the faces
    stored from it, so nobody else in it is morphed into; a withheld person's photo is
    NotFound, never morphed)."""
    from lookalike.errors import NotFound
    from lookalike.store.values import Audience

    photo_id = lib.photo_ids([face_id]).get(face_id)
    if photo_id is None:  # removed since the answer was shown
        raise NotFound(f"face {face_id} is no longer in this library")
    theirs = lib.people.portrait(photo_id, Audience.visitor)
    mine = np.ascontiguousarray(face_region(rgb, box) if box is not None else rgb)
    return lib.pictures.morph(mine, theirs, frames=frames, audience=Audience.visitor, size=CARD_SIZE).frames


def person_average(lib: Library, name: str, audience: Audience, size: int = CARD_SIZE) -> np.ndarray:
    """One person's average face (their photos, outliers left out) as ``audience`` may see it:
    for a visitor, a person who withholds consent has none (NotFound, as they have no card)."""
    from lookalike.query.facemath import Group, GroupKind

    return lib.pictures.average(Group(GroupKind.person, name), audience=audience, size=size).framed()[0]


def appearance(lib: Library, components: int, audience: Audience) -> Appearance:
    """The corpus's appearance model (what the sliders move along)."""
    return lib.pictures.appearance(components=components, audience=audience)


# -- Streamlit glue --------------------------------------------------------------------------
def remembered(key: tuple) -> bytes | None:
    """A morph this browser session already made (its GIF), so another switch or card does
    not make it again. Kept in the session's memory (``st.session_state``) only, like the
    uploaded photo itself: gone when the page is closed or reloaded, never seen by another
    session, never on disk."""
    import streamlit as st

    return st.session_state.get(MEMO_KEY, {}).get(key)


def remember(key: tuple, data: bytes) -> bytes:
    import streamlit as st

    memo = st.session_state.setdefault(MEMO_KEY, {})
    while len(memo) >= MEMO_ENTRIES:
        memo.pop(next(iter(memo)))  # the oldest
    memo[key] = data
    return data


def reason(err: Exception) -> str:
    """An error about one of the morph's two photos, without the stand-in name the verbs give
    the visitor's in-memory one (``<array>: …``) and without where the stored one is kept."""
    text = str(err).removeprefix("<array>: ")
    path = getattr(err, "path", None)
    return text.replace(path, "their photo") if isinstance(path, str) and path and path != "<array>" else text


def card_pictures(lib: Library, card: common.Card, rgb: np.ndarray, box: tuple[int, int, int, int] | None,
                  key: str, photo_key: str) -> None:
    """Under a Find card: "you ↔ them" and "their average face", each behind a toggle (off
    by default: a morph costs a second or two). Both in memory, shown inline; a failure is
    one line in the card, never a traceback. ``photo_key``: the visitor's photo's digest,
    taken once per page (hashing a 50 MP photo's pixels for every card took 1.4 s a click)."""
    import streamlit as st

    from lookalike.errors import LookalikeError
    from lookalike.store.values import Audience

    left, right = st.columns(2)
    morph = left.toggle("You ↔ them", key=f"lk_morph_{key}",
                        help="Your face turning into this photo of them, made now in memory and never stored.")
    average = right.toggle("Their average face", key=f"lk_average_{key}",
                           help="All their photos in this collection blended into one face.") if card.person else False
    if morph:
        with left:
            try:
                key_ = (photo_key, box, card.face_id)
                shown = remembered(key_)
                if shown is None:
                    from lookalike.imaging.morph import gif_bytes

                    with st.spinner("Blending your face with theirs …"):  # the morph verb takes the lock
                        shown = remember(key_, gif_bytes(you_and_them(lib, rgb, box, card.face_id), MORPH_FPS))
                inline(shown, "image/gif", f"You morphing into {card.name}", width=CARD_SIZE)
                st.caption("Made just now, in memory, for you alone: never stored.")
            except LookalikeError as err:
                st.warning(f"No morph with this photo: {reason(err)}")
    if average and card.person:
        with right:
            try:
                with st.spinner("Blending their photos …"):
                    image = person_average(lib, card.person, Audience.visitor)
                inline_png(image, f"The average face of {card.name}", width=CARD_SIZE)
                st.caption("All their photos here, warped onto one shape and blended.")
            except LookalikeError as err:
                st.warning(f"No average face for them: {err}")


def operator_average(lib: Library, name: str, title: str, where: DeltaGenerator) -> None:
    """The person view's average face (Explore → One person): every photo of theirs but the
    odd ones out, as the operator sees them."""
    import streamlit as st

    from lookalike.errors import LookalikeError
    from lookalike.store.values import Audience

    with where:
        st.markdown("**Their average face**")
        try:
            with st.spinner("Blending their photos …"):
                image = person_average(lib, name, Audience.operator)
        except LookalikeError as err:
            st.info(f"No average face: {err}")
            return
        inline_png(image, f"The average face of {title}", width=CARD_SIZE)
        st.caption("Their photos warped onto one shape and blended; odd ones out left out.")

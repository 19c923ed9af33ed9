"""What the pages share: the library, friendly errors, verdict words, face cards.

Plain functions where possible (tested without a browser); the Streamlit calls stay thin.
The visitor's photo only ever lives in memory: bytes from the uploader or the camera go
straight to :meth:`lookalike.verbs.library.Library.search`, which decodes them in memory.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ParamSpec, TypeVar

import numpy as np

from lookalike.query.search import Verdict
from lookalike.store.values import PhotoStatus
from lookalike.ui.settings import max_pixels, max_upload_mb

if TYPE_CHECKING:
    from PIL.Image import Image
    from streamlit.delta_generator import DeltaGenerator

    from lookalike.analysis import Estimate
    from lookalike.query.search import Match, QueryFace
    from lookalike.verbs.library import Library

P = ParamSpec("P")
R = TypeVar("R")

PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif"]  # no HEIC: nothing installed decodes it

VERDICT_WORDS = {  # by Verdict: a verdict added there and not here is a KeyError in the tests, not on a page
    Verdict.same_person: "very likely the same person",
    Verdict.lookalike: "looks alike",
    Verdict.weak: "faint resemblance",
}
STATUS_WORDS: dict[str, str] = {  # by PhotoStatus: a status added to the store and not here fails a test
    PhotoStatus.ok: "used (face stored)",
    PhotoStatus.no_face: "no face found",
    PhotoStatus.decode_error: "could not be opened",
    PhotoStatus.too_large: "too large to open",
    PhotoStatus.duplicate: "duplicate of another photo",
    PhotoStatus.rejected: "refused",
    PhotoStatus.error: "failed",
}
PRIVACY_NOTE = ("Your photo is processed in memory and never stored: not on disk, not in the "
                "database, not in any log. Close or reload the page and it is gone.")
INGEST_HELP = ("This library has no faces yet. Ingest a photo collection first, for example:\n\n"
               "```\nlookalike models install\nlookalike ingest photos/ --db lookalike.db\n"
               "lookalike ui --db lookalike.db\n```\n\nwhere `photos/` holds one folder per person.")


class UploadTooLarge(Exception):
    pass


@dataclass(frozen=True)
class Card:
    """One match as a person-facing card (no Streamlit in here: tested directly)."""

    face_id: int
    name: str
    role: str | None
    organisation: str | None
    story: str | None
    similarity: float
    verdict: Verdict
    words: str  # the verdict in words
    bar: float  # 0..1 for a progress bar
    explanations: tuple[str, ...]
    person: str | None = None  # the library's name of the person (None: an unnamed face)


def bar_value(similarity: float, floor: float) -> float:
    """Similarity as a 0..1 bar: 0 well below the "no good match" floor, 1 identical."""
    low = floor - 0.15
    return float(np.clip((similarity - low) / (1.0 - low), 0.0, 1.0))


def explain(match: Match, name: str, typical: float | None = None) -> tuple[str, ...]:
    """The centroid figures in plain language. ``typical``: how close this person's photos
    are to their average face on average (:meth:`lookalike.query.facts.SpaceFacts.centroid_means`) — the bar for "a
    characteristic photo" depends on the model, so it is read from the library. The lines are
    Markdown: the name in them is profile text, escaped (:func:`plain`; a display name's link
    was a live link in the "What these numbers mean" box)."""
    name = plain(name)
    out = []
    if match.person_centroid_similarity is not None:
        closer = match.person_centroid_similarity >= match.similarity
        out.append(f"Compared with {name}'s average face (all their photos blended): "
                   f"{match.person_centroid_similarity:.2f} — "
                   + ("you resemble them in general, not just in this photo."
                      if closer else "this one photo resembles you more than they usually do."))
    if match.face_typicality is not None:
        out.append(f"How typical this photo is of {name}: {match.face_typicality:.2f} "
                   + ("(a characteristic photo)." if typical is None or match.face_typicality >= typical
                      else "(an unusual photo of them)."))
    return tuple(out)


def cards(library: Library, face: QueryFace) -> list[Card]:
    """The matches of one query face as cards, with each person's profile."""
    cal = library.view.facts.calibration()
    profiles = library.people.profiles([m.person for m in face.matches if m.person])
    typical = library.view.facts.centroid_means([m.person for m in face.matches if m.person])
    out = []
    for m in face.matches:
        p = profiles.get(m.person) if m.person else None
        name = p.title if p else (m.person or "unnamed").replace("_", " ")
        out.append(Card(m.face_id, name, p.role if p else None, p.organisation if p else None,
                        p.story if p else None, m.similarity, m.verdict, VERDICT_WORDS[m.verdict],
                        bar_value(m.similarity, cal.floor), explain(m, name, typical.get(m.person)), m.person))
    return out


def status_words(status: str) -> str:
    """A stored photo status in words (one this code does not know: its name, spaced)."""
    return STATUS_WORDS.get(status, status.replace("_", " "))  # a StrEnum key is found by its value


def typicality_words(similarity: float | None, typical: float | None) -> str | None:
    """The query face vs the corpus average, in words; ``typical`` is the corpus's own mean
    similarity to its average face (:meth:`lookalike.query.facts.SpaceFacts.centroid_means`, key ``None``)."""
    if similarity is None or typical is None:
        return None
    kind = "a fairly typical face" if similarity >= typical else "a distinctive face"
    return f"Compared with the average face of this whole collection ({similarity:.2f}), you have {kind} here."


def estimate_words(estimate: Estimate) -> str:
    """An estimate worded as one: rounded, with its uncertainty, never as a fact."""
    shown = estimate.dominant_gender  # "not sure" below the model's confidence, and for children
    gender = (f"{shown} ({estimate.gender[shown]:.0%} sure)" if shown in estimate.gender
              else "not sure")
    return (f"**Estimates** (a model's guess, often wrong, never stored): age around "
            f"{round(estimate.age / 5) * 5:.0f}; gender: {gender}; "
            f"expression: {estimate.dominant_emotion} ({estimate.emotion[estimate.dominant_emotion]:.0%}).")


def read_upload(data: bytes, name: str) -> bytes:
    """The uploaded bytes, or a friendly error when they are too many."""
    limit = max_upload_mb()
    if len(data) > limit * 1024 * 1024:
        raise UploadTooLarge(f"{name} is {len(data) / 2**20:.1f} MB; photos up to {limit} MB "
                             "please (a phone photo is usually 2-8 MB).")
    return data


def boxed(rgb: np.ndarray, boxes: list[tuple[int, int, int, int]], selected: int | None = None) -> Image:
    """The photo with numbered face boxes (Pillow image); the selected one stands out."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img)
    width = max(2, round(max(img.size) / 300))
    font = ImageFont.load_default(size=max(14, round(max(img.size) / 30)))
    for i, (x, y, w, h) in enumerate(boxes):
        colour = "#ff4b4b" if i == selected else "#21c354"
        draw.rectangle((x, y, x + w, y + h), outline=colour, width=width * (2 if i == selected else 1))
        if len(boxes) > 1:
            draw.text((x + width * 2, y + width * 2), str(i + 1), fill=colour, font=font)
    return img


# -- Streamlit glue ----------------------------------------------------------------------
def library() -> Library:
    """The library named by ``LOOKALIKE_DB`` (``lookalike ui --db``), opened once per server
    (once per library: the variables are the cache's key), read by the settings' own parsers."""
    from lookalike.config import env_text

    return _open_library(env_text("LOOKALIKE_DB"), env_text("LOOKALIKE_INDEX_DIR"), max_pixels())


def said(err: BaseException) -> str:
    """``err`` as a visitor may read it: the library's places in words
    (:func:`lookalike.errors.public_text`); the log keeps the message whole."""
    from lookalike.errors import LookalikeError, public_text

    logging.getLogger(__name__).warning("shown to a visitor: %s", err)
    try:
        places = library().settings.places()
    except LookalikeError:
        places = {}
    return public_text(err, places)


def _cached(fn: Callable[P, R]) -> Callable[P, R]:
    import streamlit as st

    return st.cache_resource(show_spinner="Opening the face library …")(fn)


@_cached
def _open_library(db: str | None, index_dir: str | None, max_pixels: int) -> Library:
    import lookalike

    return lookalike.open(db=db, index_dir=index_dir, max_pixels=max_pixels)


def setting(read: Callable[[], R]) -> R:
    """``read()``, a setting from the environment; when its value cannot work the page says
    so in one line (naming the variable) and stops."""
    import streamlit as st

    from lookalike.errors import ConfigError

    try:
        return read()
    except ConfigError as err:
        st.error(f"The web app is not configured right: {err}")
        st.stop()


def check_settings() -> None:
    """Every page, operator pages too, reads the web app's own settings first: a bad
    ``LOOKALIKE_UI_*`` value is one clear line (:func:`setting`), never a later traceback."""
    setting(max_upload_mb)
    setting(max_pixels)


def ready_library(operator: bool = False) -> Library:
    """The library when it has faces; else the page says how to ingest one and stops.
    A missing SQLite file is reported, never created. Where the library is, and why it cannot
    be opened, only an ``operator`` page (behind :func:`lookalike.ui.gate.operator_gate`) says; a visitor's
    page says what kind of problem it is, and the log the rest."""
    import streamlit as st

    from lookalike import config, places
    from lookalike.errors import EmptyLibrary, LookalikeError

    check_settings()
    url = setting(lambda: config.db_url(None))  # LOOKALIKE_DB, as lookalike.open reads it
    path = places.sqlite_path(url)
    if path is not None and not path.exists():
        logging.getLogger(__name__).warning("no face library at %s yet", path)
        st.warning(f"There is no face library {f'at `{path}`' if operator else 'here'} yet.\n\n" + INGEST_HELP)
        st.stop()
    try:
        lib = library()
        # every page checks it on every interaction: counted in the database, so no page waits
        # for the library's lock (opening the index may refresh it, which only a lock holder may)
        faces = lib.view.row.face_count()
    except EmptyLibrary:
        faces = 0
    except LookalikeError as err:
        logging.getLogger(__name__).error("the face library cannot be opened: %s", err)
        st.error(f"The face library cannot be opened: {err}" if operator else
                 f"The face library cannot be opened ({type(err).__name__}); the server's log says why.")
        st.stop()
    if faces == 0:
        st.warning(INGEST_HELP)
        st.stop()
    return lib


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=\"'^])")
# what GitHub Markdown turns into a link as it stands, escaped or not (it links the text after
# the escapes are read): a scheme's "://", "www." and an address's "@"
_AUTOLINKED = re.compile(r"(?i)(?<=:)(?=//)|(?<=\bwww)(?=\.)|(?=@)")
_WORD_JOINER = "\u2060"  # invisible, and not a character a link or an address may hold


def plain(text: str) -> str:
    """Profile text (names, roles, organisations, stories, tags) for ``st.markdown``: every
    character Markdown, HTML, Streamlit's ``:color[…]`` / emoji directives or LaTeX give a
    meaning is backslash-escaped, so a link, an image, a tag or a script in a profile shows
    as the characters it is; a bare ``http://…``, ``www.…`` or ``a@b.c``, which GitHub
    Markdown links whatever is escaped, gets an invisible word joiner where the link would
    start (it was a live link out of the kiosk). Line breaks stay line breaks. Profile text
    is data, never markup."""
    lines = [_MARKDOWN_SPECIAL.sub(r"\\\1", _AUTOLINKED.sub(_WORD_JOINER, line)) for line in text.splitlines()]
    return "  \n".join(lines)


def html_text(text: str) -> str:
    """Profile text inside HTML the app writes itself (``unsafe_allow_html``): escaped."""
    import html

    return html.escape(text, quote=True)


def inline_image(img: Image, alt: str, where: DeltaGenerator | None = None, max_side: int = 1280) -> None:
    """``img`` in the page itself, as a ``data:`` URL (JPEG, at most ``max_side`` pixels a
    side). ``st.image`` would store it in Streamlit's media store and serve it at
    ``/media/<hash>.jpg`` to any client that asks while the session lasts; a visitor's photo,
    and whom it matched, get no URL at all this way."""
    import base64
    import io

    import streamlit as st

    shown = img.convert("RGB")
    shown.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    shown.save(buffer, "JPEG", quality=88)
    src = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    (where or st).html(f'<img src="{src}" alt="{html_text(alt)}" class="lk-inline" '
                       'style="width:100%;height:auto;display:block;border-radius:0.5rem">')


def show_card(lib: Library, card: Card, title: str, bar_text: str, size: int,
              widths: list[int]) -> DeltaGenerator:
    """A person card: face crop, name, role · organisation, similarity bar, story.
    ``title`` is Markdown the page made (its profile parts through :func:`plain`); role,
    organisation and story are escaped here. Returns the text column, for what a page adds."""
    import streamlit as st

    with st.container(border=True):
        pic, text = st.columns(widths, gap="medium")
        inline_image(lib.face_crop(card.face_id, size), card.name, pic)
        with text:
            st.markdown(title)
            sub = " · ".join(x for x in (card.role, card.organisation) if x)
            if sub:
                st.markdown(f"<p class='lk-sub'>{html_text(sub)}</p>", unsafe_allow_html=True)
            st.progress(card.bar, text=bar_text)
            if card.story:
                st.markdown(plain(card.story))
    return text


def style(kiosk: bool = False) -> None:
    """A calmer look; kiosk mode: large type, no sidebar, no Streamlit chrome."""
    import streamlit as st

    css = """
    .lk-card h3 {margin-bottom: 0.1rem;}
    .lk-sub {color: #5f6b7a; margin-top: 0;}
    .lk-verdict {font-weight: 600;}
    """
    if kiosk:
        css += """
        [data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header, footer {display: none;}
        .block-container {max-width: 1400px; padding-top: 1.5rem;}
        html, body, [class*="st-"] p, li, label {font-size: 1.35rem;}
        h1 {font-size: 3rem !important;} h2 {font-size: 2.2rem !important;} h3 {font-size: 1.7rem !important;}
        .stButton button {font-size: 1.5rem; padding: 0.8rem 2.2rem;}
        """
    st.markdown(f"<style>{css}</style>", unsafe_allow_html=True)

"""Find someone like me: a photo in, the closest people of the collection out, as cards."""

from __future__ import annotations

import hashlib

import streamlit as st

from lookalike.ui import common, drawn
from lookalike.ui.settings import max_pixels, max_upload_mb

common.style()
st.title("Find someone like me")
st.caption("Upload a photo or take one with your camera, and see who in this collection looks most like you.")
lib = common.ready_library()
st.info(common.PRIVACY_NOTE, icon=":material/lock:")

left, right = st.columns([2, 3], gap="large")
with left:
    how = st.radio("Your photo", ["Upload a photo", "Take a photo"], horizontal=True, label_visibility="collapsed")
    if how == "Upload a photo":
        given = st.file_uploader(f"A photo with your face (up to {max_upload_mb()} MB)",
                                 type=common.PHOTO_TYPES)
    else:
        given = st.camera_input("Look at the camera, then take the photo")
    k = st.slider("How many people to show", 1, 8, 3)
    analyze = st.checkbox("Also estimate my age, gender and emotion", value=False,
                          help="Estimates from a model: often wrong by years, never stored, never used to "
                               "choose who you are shown.")

if given is None:
    with right:
        st.markdown("#### How it works")
        st.markdown("1. Give a photo where your face is clearly visible.\n"
                    f"2. Your face is turned into {lib.view.space.dim} numbers "
                    "that describe its shape.\n"
                    "3. Those numbers are compared with every face in the collection; the closest "
                    "people are shown with how close they are.")
    st.stop()

from lookalike.errors import BadImage, LookalikeError, NoFace  # noqa: E402
from lookalike.faces.images import decode  # noqa: E402
from lookalike.store.values import Audience  # noqa: E402

try:
    data = common.read_upload(given.getvalue(), given.name or "your photo")
    photo_key = hashlib.sha256(data).hexdigest()  # the morphs' memo key, once for every card
    rgb = decode(data, given.name or "your photo", max_pixels()).rgb
    with st.spinner("Looking for people like you …"):  # lib.search takes the library's lock itself
        result = lib.search(rgb, k=k, per_person=True, audience=Audience.visitor)
except common.UploadTooLarge as err:
    left.error(str(err))
    st.stop()
except BadImage as err:
    left.error(f"This file cannot be used as a photo: {err.reason}. Try a JPEG or PNG photo.")
    st.stop()
except NoFace:
    left.warning("No face was found in this photo. Try one where your face is clearly visible, facing the "
                 "camera, not too small and not too dark.")
    st.stop()
except LookalikeError as err:
    left.error(common.said(err))
    st.stop()

faces = result.faces
with left:
    chosen = 0
    if len(faces) > 1:
        labels = [f"Face {i + 1}" + (" (largest)" if i == 0 else "") for i in range(len(faces))]
        chosen = labels.index(st.radio(f"{len(faces)} faces in this photo — which one is you?", labels,
                                       horizontal=True))
    # inline: a visitor's photo never gets a URL (st.image would serve it at /media/…)
    common.inline_image(common.boxed(rgb, [f.bbox for f in faces], chosen if len(faces) > 1 else None),
                        "Your photo, faces boxed")
    face = faces[chosen]
    # both of the faces a visitor may see: people who withhold consent are not in the average
    words = common.typicality_words(face.corpus_centroid_similarity,
                                    lib.view.facts.centroid_means(audience=Audience.visitor).get(None))
    if words:
        st.caption(words)
    if analyze:
        from lookalike.analysis import AnalyzerName

        try:
            with st.spinner("Estimating …"):
                estimate = lib.analyze(rgb, AnalyzerName.auto, boxes=[face.bbox]).faces[0].estimate
            st.markdown(common.estimate_words(estimate))
        except LookalikeError as err:
            st.warning(f"Estimates are not available on this installation: {common.said(err)}")

with right:
    found = common.cards(lib, face)
    if not found:
        st.warning("Nobody in this collection could be compared with this face.")
    else:
        st.subheader("People who look like you")
    threshold = lib.view.facts.calibration().threshold
    for rank, card in enumerate(found, 1):
        text = common.show_card(lib, card, f"### {rank}. {common.plain(card.name)}",
                                f"similarity {round(card.similarity, 2) + 0.0:.2f} — **{card.words}**", 200, [1, 3])
        with text, st.expander("What these numbers mean"):
            st.markdown("- Similarity compares your face with this photo of them: 1.00 would be identical, and "
                        f"two photos of one person usually score above {threshold:.2f}.")
            for line in card.explanations:
                st.markdown(f"- {line}")
        with text:  # "you ↔ them" and their average face: made in memory, only when asked
            drawn.card_pictures(lib, card, rgb, face.bbox if len(faces) > 1 else None, f"{chosen}_{rank}",
                                photo_key)

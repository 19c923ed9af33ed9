"""Live: the browser's camera, matched continuously, never freezing (streamlit-webrtc).

Frames come from the visitor's browser over WebRTC and go through
:class:`lookalike.ui.live_processor.LiveProcessor`, the webcam pipeline behind it. The
annotated video goes back to the browser; the matches beside it refresh every second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from lookalike.ui import common

if TYPE_CHECKING:
    from PIL.Image import Image

common.style()
st.title("Live: who do I look like?")
st.caption("Start your camera: faces are tracked and matched continuously while the picture keeps moving.")
lib = common.ready_library()
st.info(common.PRIVACY_NOTE.replace("Your photo is", "Your video is"), icon=":material/lock:")

from streamlit_webrtc import WebRtcMode, webrtc_streamer  # noqa: E402

from lookalike.ui.live_processor import LiveProcessor  # noqa: E402


@st.cache_data(max_entries=256, show_spinner=False)
def crop(db: str, face_id: int) -> Image:  # a library face, cut once per server
    return common.library().face_crop(face_id, 160)


video, side = st.columns([3, 2], gap="large")
with video:
    ctx = webrtc_streamer(
        key="live", mode=WebRtcMode.SENDRECV, video_processor_factory=lambda: LiveProcessor(lib), async_processing=True,
        media_stream_constraints={"video": {"width": 640, "height": 480}, "audio": False},
        # same machine or same network: no STUN/TURN server, so nothing leaves for the internet
        rtc_configuration={"iceServers": []},
    )


@st.fragment(run_every=1.0)
def matches() -> None:
    processor = ctx.video_processor
    if processor is None:
        st.markdown("Press **START** and allow the camera. Matches appear here.")
        return
    ready, error, faces = processor.snapshot()
    if error:
        st.error(f"Live matching could not start: {error}")
        return
    if not ready:
        st.info("Loading the face models … (a few seconds)")
    if not faces:
        st.markdown("No face in view yet.")
    profiles = lib.people.profiles([f["person"] for f in faces if f["person"]])
    floor = lib.view.facts.calibration().floor
    for face in faces:
        with st.container(border=True):
            if face["face_id"] is None:
                st.markdown("Matching …")
                continue
            pic, text = st.columns([1, 2])
            p = profiles.get(face["person"])
            name = p.title if p else (face["person"] or "unnamed").replace("_", " ")
            common.inline_image(crop(str(lib.settings.db_url), face["face_id"]), name, pic)  # no /media/ URL
            text.markdown(f"### {common.plain(name)}")
            text.progress(common.bar_value(face["similarity"], floor),
                          text=f"similarity {face['similarity']:.2f} — **{common.VERDICT_WORDS[face['verdict']]}**")


with side:
    st.subheader("Who you look like")
    matches()

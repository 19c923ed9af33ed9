"""Live: the browser's camera, matched continuously, never freezing (streamlit-webrtc).

Frames come from the visitor's browser over WebRTC and go through the same
:class:`lookalike.live.session.LivePipeline` as ``lookalike webcam``: detection on a
downscaled frame, the IoU tracker, the matching worker process. The annotated video goes
back to the browser; the matches beside it refresh every second. Frames are never stored.
"""

from __future__ import annotations

import threading
import time

import streamlit as st

from lookalike.ui import common

common.style()
st.title("Live: who do I look like?")
st.caption("Start your camera: faces are tracked and matched continuously while the picture keeps moving.")
lib = common.ready_library()
st.info(common.PRIVACY_NOTE.replace("Your photo is", "Your video is"), icon=":material/lock:")

import av  # noqa: E402
from streamlit_webrtc import VideoProcessorBase, WebRtcMode, webrtc_streamer  # noqa: E402


class LiveProcessor(VideoProcessorBase):
    """One per browser stream: its own matching worker, loaded in the background so the
    video shows at once (faces are boxed, then named when the worker is ready)."""

    def __init__(self) -> None:
        from lookalike.live.session import LiveOptions, LivePipeline

        self.pipeline = LivePipeline(lib, LiveOptions(k=3))
        self.error: str | None = None
        self._lock = threading.Lock()
        self._faces: list[dict] = []
        self._origin = time.perf_counter()
        threading.Thread(target=self._load, name="lookalike-live-load", daemon=True).start()

    def _load(self) -> None:
        try:
            self.pipeline.start()
        except Exception as err:  # noqa: BLE001 - shown beside the video, not lost on a thread
            self.error = str(err)

    def recv(self, frame: av.VideoFrame) -> av.VideoFrame:
        t = time.perf_counter() - self._origin
        canvas, _ = self.pipeline.step(frame.to_ndarray(format="bgr24"), t)
        faces = []
        for track in self.pipeline.on_screen(t):
            best = track.match.best if track.match is not None else None
            faces.append({"track": track.id, "person": best.person if best else None,
                          "face_id": best.face_id if best else None,
                          "similarity": best.similarity if best else None, "verdict": best.verdict if best else None})
        with self._lock:
            self._faces = faces
        return av.VideoFrame.from_ndarray(canvas, format="bgr24")

    def snapshot(self) -> tuple[bool, str | None, list[dict]]:
        with self._lock:
            return self.pipeline.ready, self.error, list(self._faces)

    def on_ended(self) -> None:
        self.pipeline.close()


@st.cache_data(max_entries=256, show_spinner=False)
def crop(db: str, face_id: int):  # noqa: ANN201 - a library face, cut once per server
    return common.library().face_crop(face_id, 160)


video, side = st.columns([3, 2], gap="large")
with video:
    ctx = webrtc_streamer(
        key="live", mode=WebRtcMode.SENDRECV, video_processor_factory=LiveProcessor, async_processing=True,
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
    profiles = lib.profiles([f["person"] for f in faces if f["person"]])
    for face in faces:
        with st.container(border=True):
            if face["face_id"] is None:
                st.markdown("Matching …")
                continue
            pic, text = st.columns([1, 2])
            pic.image(crop(str(lib.settings.db_url), face["face_id"]), width="stretch")
            p = profiles.get(face["person"])
            name = p.title if p else (face["person"] or "unnamed").replace("_", " ")
            text.markdown(f"### {name}")
            text.progress(common.bar_value(face["similarity"], lib.calibration().floor),
                          text=f"similarity {face['similarity']:.2f} — **{common.VERDICT_WORDS[face['verdict']]}**")


with side:
    st.subheader("Who you look like")
    matches()

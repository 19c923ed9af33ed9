"""The web app in a real browser: ``lookalike ui`` served on a loopback port, Debian's
Chromium driven headless by Playwright (never ``playwright install``).

The kiosk's camera is Chromium's fake capture device fed with a real photo (a Y4M file),
so the whole visit runs: consent, camera, photo, role models. Screenshots land in the
``artifacts`` folder (``$LOOKALIKE_TEST_ARTIFACTS``, else a temporary folder; pytest prints
its path at the end of the run) for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import in_ci, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _y4m(photo: Path, out: Path, seconds: float = 2.0) -> Path:
    """A still photo as a 640x480 Y4M clip: what Chromium's fake camera plays."""
    import cv2

    from lookalike.faces.images import decode_file
    from lookalike.live.slideshow import render

    bgr = render(decode_file(str(photo), 10**8).rgb, (640, 480), 0.0)
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(out, "wb") as fh:
        fh.write(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg\n")
        for _ in range(int(30 * seconds)):
            fh.write(b"FRAME\n" + yuv)
    return out


def _shot(page, path: Path) -> None:
    """A full-page screenshot at ``path`` (in the ``artifacts`` folder). The half second lets
    the page finish painting for the person who looks at the picture; no check reads it, so
    the pause can change how it looks, never a test's outcome."""
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)


def _camera_delivers(page) -> None:
    """Wait until the camera preview has painted a frame (a signal, not a fixed pause)."""
    page.wait_for_function("() => [...document.querySelectorAll('video')].some(v => v.readyState >= 2"
                           " && v.videoWidth > 0)", timeout=120_000)


def _started(db: Path, args: tuple[str, ...], env: dict | None) -> tuple[subprocess.Popen, int, Path]:
    """``lookalike ui`` started on a port that was free a moment ago, its output in a file."""
    port = _free_port()
    # its output to a file, not a pipe nobody reads while it runs (a full pipe would stall it);
    # not beside the library, whose folder the visitor tests compare before and after
    with tempfile.NamedTemporaryFile("w", prefix="streamlit-", suffix=".log", delete=False) as out:
        # the kiosk starts over after --kiosk-idle seconds by the wall clock, fewer than a slow
        # machine's camera may take here: a day (the reset has its own clock-set test)
        proc = subprocess.Popen([sys.executable, "-m", "lookalike.cli", "ui", "--db", str(db), "--port", str(port),
                                 "--kiosk-idle", "86400", *args], stdout=out, stderr=subprocess.STDOUT, text=True,
                                env=os.environ | (env or {}))
    return proc, port, Path(out.name)


def _serve(db: Path, *args: str, env: dict | None = None):
    """``lookalike ui --db DB ARGS…`` on a free loopback port until the generator is closed."""
    if not os.path.exists(CHROMIUM):
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    for _ in range(3):
        proc, port, log = _started(db, args, env)
        base = f"http://127.0.0.1:{port}"

        def healthy(base: str = base) -> bool:
            try:
                return urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok"
            except OSError:
                return False

        # ready, or exited (which fails at once); the guard only bounds a server that never answers
        if not wait_for(lambda proc=proc: proc.poll() is not None or healthy(), poll=0.5):
            proc.kill()
            proc.wait()
            pytest.fail(f"the web app never answered: {log.read_text()[-2000:]}")
        if proc.poll() is None:
            break
        said = log.read_text()
        log.unlink()
        # the port was free when picked and taken before Streamlit bound it (another test's
        # server, the other worker's connections): once more, on another
        assert "is not available" in said, said
    else:
        pytest.fail("three ports in a row were taken between being picked and Streamlit binding them")
    try:
        yield base
    finally:
        proc.terminate()  # `lookalike ui` became the Streamlit server: this stops the server itself
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.unlink()
    assert not _listening(port), "the web server outlived its process"


@pytest.fixture(scope="module")
def server(kiosk_db):
    yield from _serve(kiosk_db)


@pytest.fixture(scope="module")
def browser(faces, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    folder = tmp_path_factory.mktemp("chromium")
    camera = _y4m(faces / "celeb/faceapi_bbt/amy/amy5.png", folder / "visitor.y4m")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(folder / "profile"), executable_path=CHROMIUM, headless=True,
            args=[*FLAGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={camera}",
                  # plain loopback ICE candidates (not mDNS names) so the app's WebRTC peer can answer
                  "--disable-features=WebRtcHideLocalIpsWithMdns"],
            viewport={"width": 1400, "height": 1000}, permissions=["camera"])
        yield context
        context.close()


def test_a_visitor_uploads_a_photo_and_sees_the_person_first(server, browser, faces, artifacts):
    page = browser.new_page()
    media = []  # every URL of Streamlit's media store (/media/<hash>.jpg) the page asks for
    page.on("request", lambda r: media.append(r.url) if urlparse(r.url).path.startswith("/media/") else None)
    page.goto(server)
    page.get_by_role("heading", name="Find someone like me").wait_for(timeout=90_000)
    page.get_by_text("processed in memory and never stored").wait_for(timeout=120_000)  # the privacy note
    page.locator("input[type=file]").set_input_files(str(faces / "celeb/faceapi_bbt/howard/howard5.png"))
    page.get_by_role("heading", name="People who look like you").wait_for(timeout=90_000)
    first = page.locator("h3").filter(has_text="1. ").first
    assert "Howard Wolowitz" in first.inner_text()
    # the visitor's boxed photo, and the faces it matched, are in the page itself: no URL
    # serves them to anyone else while the session lasts
    mine = page.locator("img[alt='Your photo, faces boxed']")
    mine.wait_for(timeout=120_000)
    assert mine.get_attribute("src").startswith("data:image/jpeg;base64,")
    assert mine.evaluate("img => img.naturalWidth") > 100  # a real picture, decoded by the browser
    page.locator("img[alt='Howard Wolowitz']").first.wait_for(timeout=120_000)
    assert page.locator("img[src^='/media/'], img[src*='/media/']:not([src*='/static/'])").count() == 0
    assert not re.search(r"(?<!static)/media/", page.content())
    assert media == []
    _shot(page, artifacts / "find.png")
    page.close()


def test_streamlit_metrics_are_not_served(server):
    """/_stcore/metrics (sessions, caches, page counts) once answered any client, no login."""
    for path in ("/_stcore/metrics", "/_stcore/metrics/", "/_stcore/metrics?families=session_events"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server}{path}", timeout=120)
        assert refused.value.code == 404, path
    assert urllib.request.urlopen(f"{server}/_stcore/health", timeout=120).read() == b"ok"  # the rest is served


def test_the_kiosk_asks_first_then_shows_role_models_from_the_camera(server, browser, artifacts):
    page = browser.new_page()
    page.goto(f"{server}/role_models")
    agree = page.get_by_role("button", name="I agree — start the camera")
    agree.wait_for(timeout=90_000)
    assert page.locator("video").count() == 0  # no camera before consent
    _shot(page, artifacts / "kiosk-consent.png")
    agree.click()
    take = page.get_by_role("button", name="Take Photo")
    take.wait_for(timeout=120_000)
    _camera_delivers(page)
    take.click()
    page.get_by_role("heading", name="Amy Farrah Fowler").wait_for(timeout=90_000)
    names = [h.inner_text() for h in page.locator("h2").all()]
    assert names and names[0] == "Amy Farrah Fowler" and "Sheldon Cooper" not in names
    _shot(page, artifacts / "kiosk-results.png")
    page.close()


def test_live_page_names_the_face_in_the_camera_beside_a_moving_picture(server, browser, artifacts):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = browser.new_page()
    page.goto(f"{server}/live")
    page.get_by_role("heading", name="Live: who do I look like?").wait_for(timeout=90_000)
    webrtc = page.frame_locator("iframe[title*='streamlit_webrtc']").first
    webrtc.get_by_role("button", name="START").click(timeout=120_000)
    # the matches beside the video refresh by themselves (a fragment), the video keeps playing
    page.get_by_role("heading", name="Amy Farrah Fowler").wait_for(timeout=120_000)
    # the picture moves: new frames keep being presented after the matches came (counted by
    # the browser as it paints them, not against the clock: a slow minute is not a freeze)
    video = webrtc.locator("video").first.element_handle()
    video.evaluate("v => { v._painted = 0; const tick = () => { v._painted++; v.requestVideoFrameCallback(tick); };"
                   " v.requestVideoFrameCallback(tick); }")
    frame = video.owner_frame()
    assert frame is not None
    try:
        frame.wait_for_function("v => v._painted >= 10", arg=video, timeout=120_000)
    except PlaywrightTimeout:
        pytest.fail(f"the picture froze: {video.evaluate('v => v._painted')} frames painted in 2 minutes")
    _shot(page, artifacts / "live.png")
    webrtc.get_by_role("button", name="STOP").click()
    page.close()


HOSTILE = {
    "display_name": "Amy <img src=x onerror=alert(1)> [click](javascript:alert(1)) [site](http://example.invalid/a) "
                    "www.example.invalid amy@example.invalid",
    "role": "<script>alert('role')</script> **bold**",
    "organisation": "<a href='javascript:alert(2)'>Navy</a> :red[red] $x^2$",
    "story": "Line one\n![remote](http://example.invalid/tracker.png) <iframe src='http://example.invalid'></iframe>",
}


PASSWORD = "operator-Secret-42"


def _hostile_profile(db: Path) -> None:
    import lookalike
    from lookalike.store.profiles import Profile

    with lookalike.open(db) as lib:
        tags = lib.people.profiles(["amy"])["amy"].tags
        lib.people.save_profile("amy", Profile(**HOSTILE, tags=tags, consent_display=True))


@pytest.fixture(scope="module")
def hostile_db(kiosk_db, tmp_path_factory) -> Path:
    """A copy of the kiosk's library whose role model Amy has a profile full of markup."""
    folder = shutil.copytree(kiosk_db.parent, tmp_path_factory.mktemp("hostile") / "kiosk")
    db = folder / kiosk_db.name
    _hostile_profile(db)
    return db


@pytest.fixture(scope="module")
def hostile_server(hostile_db):
    """That library served, with operator pages behind a password."""
    yield from _serve(hostile_db, env={"LOOKALIKE_UI_PASSWORD": PASSWORD})


@pytest.fixture(scope="module")
def visitor_server(kiosk_db):
    yield from _serve(kiosk_db, "--visitor-only")


def _nothing_injected(page) -> None:
    """The profile's markup arrived as text: no element, link, frame or remote image of it."""
    assert page.locator("[onerror]").count() == 0
    assert page.locator("img[src='x'], img[src*='example.invalid'], iframe[src*='example.invalid']").count() == 0
    assert page.locator("a[href^='javascript'], a[href*='example.invalid']").count() == 0
    assert page.evaluate("() => [...document.scripts].some(s => s.text.includes('alert'))") is False
    body = _text(page)
    assert "<img src=x onerror=alert(1)>" in body and "[click](javascript:alert(1))" in body
    assert "[site](http://example.invalid/a) www.example.invalid amy@example.invalid" in body


def _text(page) -> str:
    """The page's text as a visitor reads it: without the invisible word joiners that keep a
    URL or an address in profile text from becoming a link (lookalike.ui.common.plain)."""
    return page.locator("body").inner_text().replace("\u2060", "")


def test_profile_text_is_shown_as_text_on_every_visitor_page(hostile_server, browser, faces, artifacts):
    page = browser.new_page()
    page.goto(hostile_server)
    page.get_by_role("heading", name="Find someone like me").wait_for(timeout=90_000)
    page.locator("input[type=file]").set_input_files(str(faces / "celeb/faceapi_bbt/amy/amy5.png"))
    page.get_by_text("<img src=x onerror=alert(1)>", exact=False).first.wait_for(timeout=90_000)
    # the card's lines arrive one by one (Streamlit streams the page): wait for the role's too
    page.get_by_text("<script>alert('role')</script>", exact=False).first.wait_for(timeout=120_000)
    _nothing_injected(page)
    assert "<script>alert('role')</script>" in page.locator("body").inner_text()
    _shot(page, artifacts / "hostile-find.png")

    page.goto(f"{hostile_server}/role_models")
    page.get_by_role("button", name="I agree — start the camera").click(timeout=90_000)
    take = page.get_by_role("button", name="Take Photo")
    take.wait_for(timeout=120_000)
    _camera_delivers(page)
    take.click()
    page.get_by_text("<img src=x onerror=alert(1)>", exact=False).first.wait_for(timeout=90_000)
    page.get_by_text("![remote](http:", exact=False).first.wait_for(timeout=120_000)  # a word joiner after "http:"
    _nothing_injected(page)
    assert "![remote](http://example.invalid/tracker.png)" in _text(page)
    _shot(page, artifacts / "hostile-kiosk.png")

    page.goto(f"{hostile_server}/live")
    webrtc = page.frame_locator("iframe[title*='streamlit_webrtc']").first
    webrtc.get_by_role("button", name="START").click(timeout=90_000)
    page.get_by_text("<img src=x onerror=alert(1)>", exact=False).first.wait_for(timeout=120_000)
    _nothing_injected(page)
    webrtc.get_by_role("button", name="STOP").click()
    page.close()


@pytest.mark.parametrize("path", ["explore", "admin"])
def test_a_visitor_only_site_has_no_operator_pages(visitor_server, browser, path):
    page = browser.new_page()
    page.goto(f"{visitor_server}/{path}")
    page.get_by_role("heading", name="Find someone like me").wait_for(timeout=90_000)  # the default page instead
    body = page.locator("body").inner_text()
    assert "Explore the collection" not in body and "Admin" not in body and "sheldon" not in body.lower()
    assert page.get_by_role("link", name="Explore").count() == 0 and page.get_by_role("link", name="Admin").count() == 0
    page.close()


def _operator(page, url: str, heading: str) -> None:
    """Open an operator page: nothing of the library before the password, the page after."""
    page.goto(url)
    page.get_by_role("heading", name=heading).wait_for(timeout=90_000)
    page.get_by_text("Operator password or admin API key").wait_for(timeout=120_000)
    body = page.locator("body").inner_text()
    assert "amy" not in body.lower() and "sheldon" not in body.lower() and "kiosk" not in body.lower()
    page.get_by_label("Operator password or admin API key").fill(PASSWORD)
    page.get_by_role("button", name="Open").click()


def test_operator_pages_show_profile_text_as_text_and_the_admin_edits_it(hostile_server, hostile_db, browser,
                                                                        artifacts, request):
    # the edit below is put back afterwards: the visitor pages' test reads the same library,
    # in whichever order the two run
    request.addfinalizer(lambda: _hostile_profile(hostile_db))
    page = browser.new_page()
    _operator(page, f"{hostile_server}/explore", "Explore the collection")
    page.get_by_text("Most photos").wait_for(timeout=90_000)
    _nothing_injected(page)  # amy heads the "most photos" list under her display name
    _shot(page, artifacts / "hostile-explore.png")

    _operator(page, f"{hostile_server}/admin", "Admin: role models")
    page.get_by_text("Person (8)").wait_for(timeout=90_000)
    page.get_by_role("combobox").first.click()
    page.get_by_role("option", name="amy", exact=True).click()
    # the rerun for the chosen person has replaced the form (no stale copy of it left), every
    # field read here: Streamlit sends a rerun's widgets in batches 5 ms apart, so the story may
    # still be the empty "(a new person)" one when the display name is already amy's
    page.wait_for_function("story => { const f = document.querySelectorAll(\"input[aria-label='Display name']\");"
                           " const s = document.querySelectorAll(\"textarea[aria-label='Story']\");"
                           " return f.length === 1 && f[0].value.includes('onerror')"
                           " && s.length === 1 && s[0].value === story; }", arg=HOSTILE["story"], timeout=120_000)
    display = page.get_by_label("Display name")
    assert display.input_value() == HOSTILE["display_name"]
    assert page.get_by_label("Story").input_value() == HOSTILE["story"]
    assert page.locator("[onerror]").count() == 0 and page.locator("a[href^='javascript']").count() == 0
    page.get_by_label("Story").fill("Edited in the admin page.")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved amy.").wait_for(timeout=120_000)
    _shot(page, artifacts / "admin.png")
    page.close()


def _library_files(folder: Path) -> dict:
    """Files beside the library and their mtimes (SQLite's -wal/-shm change on every read)."""
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def _frame_count(page, selector: str) -> int:
    """How many frames the browser itself decodes from the picture at ``selector``."""
    return page.eval_on_selector(selector, "async img => { const data = await (await fetch(img.src)).arrayBuffer();"
                                           " const d = new ImageDecoder({data, type: 'image/gif'});"
                                           " await d.tracks.ready; return d.tracks.selectedTrack.frameCount; }")


def test_a_visitor_sees_you_and_them_morph_made_in_memory(server, browser, faces, kiosk_db, artifacts):
    from lookalike.ui import drawn

    before = _library_files(kiosk_db.parent)
    page = browser.new_page()
    media = []
    page.on("request", lambda r: media.append(r.url) if urlparse(r.url).path.startswith("/media/") else None)
    page.goto(server)
    page.get_by_role("heading", name="Find someone like me").wait_for(timeout=90_000)
    page.locator("input[type=file]").set_input_files(str(faces / "celeb/faceapi_bbt/howard/howard5.png"))
    page.get_by_role("heading", name="People who look like you").wait_for(timeout=90_000)
    page.get_by_text("You ↔ them").first.click()
    morph = page.locator("img[alt='You morphing into Howard Wolowitz']")
    morph.wait_for(timeout=120_000)
    assert morph.get_attribute("src").startswith("data:image/gif;base64,")  # in the page: no URL serves it
    page.wait_for_function("img => img.complete && img.naturalWidth >= 128", arg=morph.element_handle(),
                           timeout=120_000)
    assert _frame_count(page, "img[alt='You morphing into Howard Wolowitz']") == 2 * drawn.MORPH_FRAMES - 2
    page.get_by_text("Their average face").first.click()
    average = page.locator("img[alt='The average face of Howard Wolowitz']")
    average.wait_for(timeout=120_000)
    assert average.get_attribute("src").startswith("data:image/png;base64,")
    assert media == [] and not re.search(r"(?<!static)/media/", page.content())
    _shot(page, artifacts / "find-morph.png")
    page.close()
    assert _library_files(kiosk_db.parent) == before  # the morph was never written beside the library


def test_the_face_sliders_draw_a_face_as_they_move(hostile_server, browser, artifacts):
    page = browser.new_page()
    _operator(page, f"{hostile_server}/explore", "Explore the collection")
    page.get_by_role("tab", name="Face sliders").click(timeout=90_000)
    face = page.locator("img[alt^='The face the sliders draw']")
    page.locator("img[alt='The face the sliders draw: the average face']").wait_for(timeout=180_000)
    mean = face.get_attribute("src")
    assert mean.startswith("data:image/png;base64,")
    slider = page.get_by_role("slider").first
    slider.focus()
    for _ in range(4):
        slider.press("ArrowRight")
    # the panel reruns alone and draws the moved face: the alt text names the slider's place
    page.locator("img[alt*='direction 1 at +']").wait_for(timeout=120_000)
    moved = face.get_attribute("src")
    assert moved.startswith("data:image/png;base64,") and moved != mean
    page.wait_for_function("img => img.complete && img.naturalWidth >= 64", arg=face.element_handle(),
                           timeout=120_000)
    _shot(page, artifacts / "explore-sliders.png")
    page.get_by_role("button", name="Back to the average face").click()
    page.locator("img[alt='The face the sliders draw: the average face']").wait_for(timeout=120_000)
    assert face.get_attribute("src") == mean
    page.close()

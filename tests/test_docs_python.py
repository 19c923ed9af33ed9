"""The Python the README and docs/architecture.md show runs as printed: each page's
```python block is run unchanged, in a new folder laid out as the block assumes
(``photos/<person>/`` with ``barack_obama``, ``someone`` and ``someone_else``, a ``me.jpg``),
so a verb, an argument or an attribute renamed in the code fails here, not in a reader's
first session. (docs/imaging.md's block works on arrays it does not build: its names are
checked by tests/test_imaging.py.)"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("README.md", "docs/architecture.md")


def _python_blocks(page: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", (ROOT / page).read_text(), flags=re.S | re.M)


def _lay_out(folder: Path, faces: Path) -> None:
    """The folder each block assumes: people's photos under ``photos/`` and a query photo."""
    known = faces / "celeb" / "face_recognition"
    people = {"barack_obama": [known / "barack_obama" / name for name in ("obama.jpg", "obama1.jpg", "obama2.jpg")],
              "someone": [known / "joe_biden" / name for name in ("biden.jpg", "biden2.jpg")],
              "someone_else": [known / "rose_leslie" / name for name in ("img1.jpg", "img2.jpg")]}
    for person, photos in people.items():
        (folder / "photos" / person).mkdir(parents=True)
        for photo in photos:
            shutil.copyfile(photo, folder / "photos" / person / photo.name)
    shutil.copyfile(faces / "bad-inputs" / "collected" / "resolution_ladder__obama-480p.jpg", folder / "me.jpg")


def test_each_page_shows_one_block():
    assert [len(_python_blocks(page)) for page in PAGES] == [1, 1]


@pytest.mark.parametrize("page", PAGES)
def test_the_python_a_page_shows_runs_as_printed(page, faces, analysis_weights, tmp_path):
    [block] = _python_blocks(page)
    _lay_out(tmp_path, faces)
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=dict(os.environ),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{page}'s Python block failed:\n{done.stderr[-3000:]}"
    # the query is Barack Obama's photo: the block's first answer names him
    assert done.stdout.split()[:1] == ["barack_obama"], done.stdout
    assert (tmp_path / "lookalike.db").is_file()

"""Explore the collection: what the library holds and how its faces relate to each other.

For the people who run the collection, not for ML specialists: counts, the photos that
could not be used, one person's photos from most to least typical, the main directions in
which faces differ (PCA), groups of faces that pass as one person (clusters) and photos
far from their own person's average face (outliers).

Only the open tab runs (``st.tabs(on_change="rerun")``); the heavy results are cached per
library *state* (database URL and its counts), so a new ingest or a removal recomputes
them. Face crops are cut from the photo files on demand and kept in memory only.
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from pathlib import PurePath
from typing import TYPE_CHECKING

import altair as alt
import pandas as pd
import streamlit as st

from lookalike.errors import LookalikeError
from lookalike.measure import explore
from lookalike.query.person import MIN_FACES_FOR_OUTLIERS
from lookalike.ui import common, drawn, gate, sliders

if TYPE_CHECKING:
    from lookalike.verbs.library import Library

TILE = 128  # px, face crops in the grids
MAX_GROUP_TILES = 12  # crops shown per group before "+ N more"
TABS = ["Overview", "Problem photos", "One person", "Main directions", "Look-alike groups", "Odd ones out",
        "Face sliders"]

common.style()
st.title("Explore the collection")
st.caption("A look inside the face library: what it holds, which photos could not be used, "
           "and how the faces relate to each other.")
gate.operator_gate()  # every person, consent or not, their photos and paths: operators only
lib = common.ready_library(operator=True)



def pct(share: float) -> str:
    return f"{share:.0%}" if share >= 0.1 else f"{share:.1%}"


# -- cached computations: keyed on the library state, never on the library object -------
@st.cache_data(show_spinner=False, max_entries=16)
def people_of(_lib: Library, state: tuple) -> dict[str, int]:
    """Person name -> faces, from every face of the library."""
    data = _lib.measure.corpus()
    return dict(Counter(f.person for f in data.faces if f.person is not None))


@st.cache_data(show_spinner=False, max_entries=64, ttl=600)
def titles_of(_lib: Library, state: tuple, names: tuple[str, ...]) -> dict[str, str]:
    """Person name -> the name to show (a manifest's display name, else the name with spaces)."""
    profiles = _lib.people.profiles(names)
    return {n: profiles[n].title if n in profiles else n.replace("_", " ") for n in names}


@st.cache_data(show_spinner=False, max_entries=16)
def pca_of(_lib: Library, state: tuple, components: int) -> tuple[explore.PcaReport, dict[int, str | None]]:
    report, data = _lib.measure.pca(components)
    wanted = {i for c in report.components for i in c.low + c.high}
    return report, {f.face_id: f.person for f in data.faces if f.face_id in wanted}


@st.cache_data(show_spinner=False, max_entries=16)
def clusters_of(_lib: Library, state: tuple, min_size: int) -> tuple[explore.ClusterReport, dict[int, str | None]]:
    report, data = _lib.measure.clusters(min_size)
    wanted = {i for c in report.clusters for i in c}
    return report, {f.face_id: f.person for f in data.faces if f.face_id in wanted}


@st.cache_data(show_spinner=False, max_entries=16)
def outliers_of(_lib: Library, state: tuple, limit: int) -> list[explore.Outlier]:
    return _lib.measure.outliers(limit)


@st.cache_data(show_spinner=False, max_entries=4000, ttl=3600)
def crop_of(_lib: Library, state: tuple, face_id: int, size: int, flagged: bool) -> bytes | None:
    """A face crop as JPEG bytes (memory only), red-framed when ``flagged``; ``None`` when the
    photo file is gone or unreadable."""
    from PIL import ImageDraw

    try:
        img = _lib.face_crop(face_id, size).convert("RGB")
    except LookalikeError as err:  # the tile shows "photo not found"; the log says why
        logging.getLogger(__name__).info("face %d: no crop (%s)", face_id, err)
        return None
    if flagged:
        ImageDraw.Draw(img).rectangle((0, 0, size - 1, size - 1), outline="#e0301e", width=max(3, size // 32))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


@st.cache_data(show_spinner=False)
def placeholder(size: int) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), "#e9ecef")
    ImageDraw.Draw(img).multiline_text((size / 2, size / 2), "photo\nnot found", fill="#6c757d", anchor="mm",
                                       align="center")
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def grid(face_ids: list[int], captions: list[str], flagged: list[bool] | None = None, size: int = TILE) -> None:
    """Face crops in a wrapping row, a caption under each (the alt text names the face id)."""
    if not face_ids:
        return
    flagged = flagged or [False] * len(face_ids)
    crops = [crop_of(lib, state, i, size, f) for i, f in zip(face_ids, flagged)]
    st.image([c or placeholder(size) for c in crops], caption=captions, width=size,
             alt=[f"Face {i}: {c}" + ("" if crop else " (photo file not found)")
                  for i, c, crop in zip(face_ids, captions, crops)])


def failed(err: LookalikeError) -> None:
    st.error(f"This view cannot be shown: {err}")


stats = lib.stats()
state = (stats["db"], stats["faces"], stats["photos"], stats["people"])
tabs = dict(zip(TABS, st.tabs(TABS, key="view", on_change="rerun", bind="query-params")))


# -- overview ----------------------------------------------------------------------------
def overview() -> None:
    index = stats["index"]
    cols = st.columns(5)
    cols[0].metric("People", f"{stats['people']:,}", help="People with at least one stored face.")
    cols[1].metric("Photos", f"{stats['photos']:,}", help="Every photo the ingest looked at, used or not.")
    cols[2].metric("Faces", f"{stats['faces']:,}", help="Faces stored and searchable.")
    cols[3].metric("Search index", index.get("index_key", "—"),
                   help=f"How faces are looked up: {index.get('ntotal', 0):,} faces in the index "
                        f"({index.get('bytes', 0) / 2**20:.1f} MB). 'Flat' compares with every face.")
    cols[4].metric("Face model", index.get("model", "—"),
                   help=f"Faces found with {index.get('detector')}, aligned with {index.get('aligner')}; "
                        f"each face becomes {index.get('dim')} numbers, compared by {index.get('metric')}.")
    st.caption(f"Library: `{stats['db']}`")

    st.subheader("What happened to each photo")
    st.caption("Every photo the ingest saw gets exactly one outcome. Photos that were not used "
               "are listed, with the reason, under **Problem photos**.")
    counts = {s: n for s, n in stats["statuses"].items() if n or s == "ok"}
    cols = st.columns(5)
    for i, (status, n) in enumerate(sorted(counts.items(), key=lambda kv: (kv[0] != "ok", -kv[1]))):
        cols[i % 5].metric(common.status_words(status).capitalize(), f"{n:,}")

    st.subheader("Photos per person")
    st.caption("How many usable photos each person has. People with several photos are found more "
               "reliably, and odd ones out can only be spotted from 4 photos on.")
    with st.spinner("Counting faces per person …"):
        people = people_of(lib, state)
    if people:
        bands = ["1", "2", "3", "4–9", "10–19", "20 or more"]

        def band(n: int) -> str:
            return bands[min(n, 3) - 1] if n < 4 else "4–9" if n < 10 else "10–19" if n < 20 else "20 or more"

        per = Counter(band(n) for n in people.values())
        left, right = st.columns([3, 2])
        table = pd.DataFrame({"photos": bands, "people": [per.get(b, 0) for b in bands]})
        left.altair_chart(alt.Chart(table).mark_bar(color="#4a78b0").encode(
            x=alt.X("photos:N", sort=bands, title="photos of the person", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("people:Q", title="people", axis=alt.Axis(tickMinStep=1)),
            tooltip=["photos", "people"]).properties(height=240), width="stretch")
        names = sorted(people, key=lambda n: (-people[n], n))[:5]
        titles = titles_of(lib, state, tuple(names))
        right.markdown("**Most photos**\n\n" + "\n".join(f"- {common.plain(titles[n])}: {people[n]}" for n in names))

    est = stats.get("estimates") or {}
    if est.get("faces"):
        st.subheader("Estimated emotion and age")
        st.caption(f"{est['faces']:,} faces carry estimates made by a model at ingest. They are often "
                   "wrong by years or by mood; read them as a rough picture of the collection, never "
                   "as facts about a person.")
        left, right = st.columns(2)
        if est.get("emotion"):
            left.bar_chart(pd.DataFrame({"faces": est["emotion"]}), x_label="estimated emotion", y_label="faces")
        if est.get("age_band"):
            right.bar_chart(pd.DataFrame({"faces": est["age_band"]}), x_label="estimated age", y_label="faces",
                            sort=False)

    st.subheader("What the other tabs show")
    st.markdown(
        "- **Problem photos** — the photos that could not be used, and why.\n"
        "- **One person** — all photos of someone, from the most typical to the least.\n"
        "- **Main directions** — the main ways in which the faces of this collection differ.\n"
        "- **Look-alike groups** — faces close enough to pass as one person, including look-alikes.\n"
        "- **Odd ones out** — photos far from their own person's other photos: often a wrong name.")


# -- problem photos ----------------------------------------------------------------------
PROBLEM_LIMIT = 5000


def problem_photos() -> None:
    st.caption("Photos the ingest looked at but could not take a face from. Fix or remove them, then "
               "run `lookalike ingest` again: unchanged photos are skipped, fixed ones are read again.")
    rows = lib.problems(PROBLEM_LIMIT)
    if not rows:
        st.success("No problem photos: every photo gave a face.")
        return
    found = Counter(status for _, status, _ in rows)
    chosen = st.pills("Show", sorted(found), selection_mode="multi", default=sorted(found),
                      format_func=lambda s: f"{common.status_words(s)} ({found[s]:,})", key="problem_status")
    shown = [(PurePath(path), common.status_words(status), reason) for path, status, reason in rows
             if status in chosen]
    table = pd.DataFrame([(p.name, said, "" if reason in (None, said) else reason, str(p.parent))
                          for p, said, reason in shown], columns=["File", "What happened", "Details", "Folder"])
    more = f" (the first {PROBLEM_LIMIT:,})" if len(rows) == PROBLEM_LIMIT else ""
    st.caption(f"{len(table):,} of {len(rows):,} problem photos{more}.")
    st.dataframe(table, hide_index=True, width="stretch")


# -- one person --------------------------------------------------------------------------
def one_person() -> None:
    st.caption("All photos of one person, from the most typical to the least. Each photo is compared "
               "with the person's *average face* (all their photos blended): 1.00 would be exactly that "
               "average. A photo far below the others — framed in red — is an *odd one out*: often "
               "someone else filed under this name, a badly cut face or a very unusual picture. "
               "Odd ones out can only be told for people with at least 4 photos.")
    with st.spinner("Listing people …"):
        people = people_of(lib, state)
    if not people:
        st.info("No face in this library is filed under a person's name.")
        return
    names = sorted(people, key=str.casefold)
    titles = titles_of(lib, state, tuple(names))
    busiest = max(names, key=lambda n: (people[n], n))
    name = st.selectbox(f"Person ({len(names):,})", names, index=names.index(busiest), key="person",
                        format_func=lambda n: f"{titles[n]} — {people[n]} face{'s' * (people[n] != 1)}")
    report = lib.person(name)
    profile = report.profile
    sub = " · ".join(x for x in (profile.get("role"), profile.get("organisation")) if x)
    st.markdown(f"### {common.plain(profile.get('display_name') or titles[name])}"
                + (f"  \n{common.plain(sub)}" if sub else ""))
    if profile.get("story"):
        st.markdown(common.plain(profile["story"]))
    if not report.faces:
        st.info("This person has no stored face in this library.")
        return
    odd = [f for f in report.faces if f.outlier]
    drawn.operator_average(lib, name, profile.get("display_name") or titles[name], st.columns([1, 2])[0])
    figures = report.figures()
    cols = st.columns(3)
    cols[0].metric("Photos with a face", figures["faces"])
    cols[1].metric("Typical similarity to their average", f"{figures['median_similarity']:.2f}",
                   help="The median: half the photos are closer to the average face than this.")
    cols[2].metric("Odd ones out", "—" if figures["outliers"] is None else figures["outliers"],
                   help=f"Needs at least {MIN_FACES_FOR_OUTLIERS} photos of the person.")
    grid([f.face_id for f in report.faces],
         [f"{f.similarity:.3f}" + (" · odd one out" if f.outlier else "") for f in report.faces],
         [f.outlier for f in report.faces])
    if odd:
        with st.expander("Files of the odd ones out"):
            st.dataframe(pd.DataFrame([(f.photo, f.similarity, f.robust_z) for f in odd],
                                      columns=["Photo", "Similarity", "Robust z"]), hide_index=True,
                         column_config={"Similarity": st.column_config.NumberColumn(format="%.3f"),
                                        "Robust z": st.column_config.NumberColumn(format="%.1f")})


# -- PCA -----------------------------------------------------------------------------------
MAX_COMPONENTS = 10


def main_directions() -> None:
    st.caption("Each face is stored as a list of numbers. Here we look for the *directions* in which the "
               "faces of this collection differ most (principal component analysis). The first direction "
               "captures the biggest share of the differences between faces, the second the next biggest, "
               "and so on. Few tall bars mean faces here differ in a few main ways; a long flat tail means "
               "many small, independent differences.")
    with st.spinner("Finding the main directions …"):
        report, person_of = pca_of(lib, state, MAX_COMPONENTS)
    spectrum = pd.DataFrame({"direction": range(1, len(report.spectrum) + 1), "share": report.spectrum})
    spectrum["together"] = spectrum["share"].cumsum()
    st.metric("Share of the differences held by the first 20 directions", pct(report.share_top20),
              help=f"Out of {len(report.spectrum)} directions, computed on {report.faces:,} faces.")
    left, right = st.columns(2)
    with left:
        st.markdown("**How much each direction explains**")
        st.altair_chart(alt.Chart(spectrum).mark_bar(color="#4a78b0").encode(
            x=alt.X("direction:O", title="direction", axis=alt.Axis(values=list(range(10, len(spectrum) + 1, 10)))),
            y=alt.Y("share:Q", title="share of the differences", axis=alt.Axis(format="%")),
            tooltip=["direction", alt.Tooltip("share:Q", format=".2%")]), width="stretch")
    with right:
        st.markdown("**How much the first directions explain together**")
        line = alt.Chart(spectrum).mark_line(color="#c0504d").encode(
            x=alt.X("direction:Q", title="number of directions",
                    scale=alt.Scale(domain=[1, len(spectrum)], nice=False),
                    axis=alt.Axis(values=[1, *range(10, len(spectrum) + 1, 10)])),
            y=alt.Y("together:Q", title="share of the differences", axis=alt.Axis(format="%"),
                    scale=alt.Scale(domain=[0, 1])),
            tooltip=["direction", alt.Tooltip("together:Q", format=".1%")])
        mark = alt.Chart(spectrum[spectrum["direction"] == min(20, len(spectrum))]).mark_point(
            color="#c0504d", size=60, filled=True).encode(x="direction:Q", y="together:Q")
        st.altair_chart(line + mark, width="stretch")
    with st.expander("The numbers"):
        st.dataframe(spectrum.rename(columns={"direction": "Direction", "share": "Share",
                                              "together": "Together"}),
                     hide_index=True, column_config={"Share": st.column_config.NumberColumn(format="percent"),
                                                     "Together": st.column_config.NumberColumn(format="percent")})

    st.subheader("The faces at both ends of each direction")
    st.caption("For every main direction, the faces furthest along it on one side and on the other. "
               "Compare the two rows to see what the direction is about — often light, head pose, age, "
               "glasses or a beard. The model found these directions by itself; they have no names.")
    n = len(report.components)
    if n > 1:
        n = st.columns([2, 3])[0].slider("Directions to show", 1, n, min(5, n), key="pca_components")
    titles = titles_of(lib, state, tuple(sorted({p for p in person_of.values() if p})))
    for c in report.components[:n]:
        st.markdown(f"**Direction {c.index}** — {pct(c.explained)} of the differences")
        for end, ids in (("One end", c.low), ("The other end", c.high)):
            label, faces = st.columns([1, 8], vertical_alignment="center")
            label.caption(end)
            with faces:
                grid(ids, [titles.get(person_of.get(i) or "", "unnamed") for i in ids], size=112)


# -- clusters ------------------------------------------------------------------------------
def lookalike_groups() -> None:
    st.caption("Faces are put in the same group when *every pair* of them is close enough to pass as the "
               "same person (the threshold the search uses for “very likely the same person”). A group "
               "holding several names is a set of look-alikes — or a mislabelled photo. A person spread "
               "over several groups has photos that differ a lot (age, light, angle).")
    left, right, _ = st.columns([2, 2, 1], vertical_alignment="bottom")
    min_size = left.slider("Smallest group (faces)", 2, 10, 2, key="group_min_size")
    only_mixed = right.toggle("Only groups that mix people", key="group_mixed")
    with st.spinner("Grouping faces …"):
        report, person_of = clusters_of(lib, state, min_size)
    grouped = sum(len(c) for c in report.clusters)
    cols = st.columns(4)
    cols[0].metric("Groups", f"{len(report.clusters):,}",
                   help=f"Of at least {min_size} faces, among {report.faces:,}; {report.faces - grouped:,} "
                        "faces are in no such group.")
    cols[1].metric("Agreement with the names", "—" if report.purity is None else pct(report.purity),
                   help="Share of grouped faces whose group is mostly their own person.")
    cols[2].metric("Groups that mix people", report.clusters_merged)
    cols[3].metric("People spread over groups", report.people_split)
    st.caption(f"Same-person threshold: similarity {report.threshold:.2f} or more.")

    groups = [(n, members) for n, members in enumerate(report.clusters, start=1)
              if not only_mixed or len({person_of.get(i) for i in members} - {None}) > 1]
    if not groups:
        st.info("No group mixes people: every group is a single person." if only_mixed
                else f"No group of {min_size} or more faces.")
        return
    shown = st.columns([2, 3])[0].slider("Groups to show", 1, len(groups), min(20, len(groups)),
                                         key="groups_shown") if len(groups) > 1 else 1
    names = tuple(sorted({p for _, members in groups for p in map(person_of.get, members) if p}))
    titles = titles_of(lib, state, names)
    for n, members in groups[:shown]:
        who = Counter(person_of.get(i) for i in members)
        summary = ", ".join(f"{common.plain(titles.get(p, '?')) if p else 'unnamed'} ×{k}"  # profile text: escaped
                            for p, k in who.most_common())
        mixed = len(who) > 1
        st.markdown(f"**Group {n}** · {len(members)} faces · {summary}"
                    + (" · :red[mixes people]" if mixed else ""))
        head = members[:MAX_GROUP_TILES]
        grid(head, [titles.get(person_of.get(i) or "", "unnamed") for i in head])
        if len(members) > len(head):
            st.caption(f"… and {len(members) - len(head)} more faces")


# -- outliers ------------------------------------------------------------------------------
def odd_ones_out() -> None:
    st.caption("Across the whole collection: the photos furthest from their own person's average face, "
               "worst first. They are usually a photo filed under the wrong name, a face cut badly by the "
               "detector, or a very unusual picture. *Robust z* says how far below that person's usual "
               "photos it is (below −3.5 counts as an odd one out). Only people with at least 4 photos "
               "are checked.")
    limit = st.columns([2, 3])[0].slider("Show at most", 5, 100, 20, step=5, key="outlier_limit")
    with st.spinner("Looking for odd ones out …"):
        found = outliers_of(lib, state, limit)
    if not found:
        st.success("No odd ones out: every checked photo is close to its person's other photos.")
        return
    titles = titles_of(lib, state, tuple(sorted({o.person for o in found})))
    grid([o.face_id for o in found], [f"{titles[o.person]} · z {o.robust_z:.1f}" for o in found])
    st.dataframe(pd.DataFrame([(titles[o.person], o.similarity, o.robust_z, o.photo) for o in found],
                              columns=["Person", "Similarity to their average", "Robust z", "Photo"]),
                 hide_index=True, width="stretch",
                 column_config={"Similarity to their average": st.column_config.NumberColumn(format="%.3f"),
                                "Robust z": st.column_config.NumberColumn(format="%.1f")})


VIEWS = {"Overview": overview, "Problem photos": problem_photos, "One person": one_person,
         "Main directions": main_directions, "Look-alike groups": lookalike_groups, "Odd ones out": odd_ones_out,
         "Face sliders": lambda: sliders.face_sliders(lib, state)}
for label, tab in tabs.items():
    if tab.open is False:  # only the open tab runs
        continue
    with tab:
        try:
            VIEWS[label]()
        except LookalikeError as err:
            failed(err)

"""Admin: the people who keep the role-model collection current, without a CSV.

Add a role model with photos, story, organisation, role and tags; see which photos failed
and why; edit a profile; withdraw consent (the person leaves the kiosk at once: the change
moves the space's generation, which every search reads with its answer,
:mod:`lookalike.store.generations`); remove a person entirely. The same library
verbs as ``POST /v1/people``, ``POST /v1/people/{name}/photos``, ``PUT …/consent`` and
``DELETE /v1/people/{name}``. Behind the operator's password or an admin API key.

Profile text is shown back in form fields and tables, which show it as text, never markup.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lookalike.errors import EmptyLibrary, LookalikeError
from lookalike.store.profiles import Profile
from lookalike.store.values import Audience
from lookalike.ui import common, gate

NEW = "(a new person)"

common.style()
st.title("Admin: role models")
gate.operator_gate()
lib = common.library()

try:
    people = {p.profile.name: p for p in lib.people.summaries(Audience.operator)}
except EmptyLibrary:  # a library with no embedding space yet: nobody to list
    people = {}
except LookalikeError as err:  # the operator's page: the message whole
    st.error(f"The people cannot be listed: {err}")
    st.stop()

# what the last save did, shown once after the page reloaded with the person chosen
done = st.session_state.pop("admin_done", None)
if done is not None:
    st.success(f"Saved {done[0]}.")
    if done[1]:
        st.dataframe(pd.DataFrame(done[1]), hide_index=True)
said = st.session_state.pop("admin_said", None)  # what a consent button did, shown once
if said is not None:
    st.success(said)
if "admin_next" in st.session_state:  # a widget's value may be set only before it is drawn
    st.session_state["admin_person"] = st.session_state.pop("admin_next")
chosen = st.selectbox(f"Person ({len(people):,})", [NEW, *sorted(people, key=str.casefold)], key="admin_person")
current = people.get(chosen)
profile = current.profile if current is not None else None

with st.form("profile", clear_on_submit=False):
    name = st.text_input("Name (an identifier: letters, digits, spaces, _ . -)",
                         value=chosen if current is not None else "", disabled=current is not None, key="admin_name")
    display = st.text_input("Display name", value=(profile.display_name or "") if profile else "")
    role = st.text_input("Role", value=(profile.role or "") if profile else "")
    organisation = st.text_input("Organisation", value=(profile.organisation or "") if profile else "")
    story = st.text_area("Story", value=(profile.story or "") if profile else "", height=150)
    tags = st.text_input("Self-declared tags (separated by ;)", value="; ".join(profile.tags) if profile else "")
    consent = st.checkbox("Agreed to be shown to visitors", value=bool(current and current.consent))
    photos = st.file_uploader("Photos of them", type=common.PHOTO_TYPES, accept_multiple_files=True)
    saved = st.form_submit_button("Save", type="primary")

if saved:
    from lookalike.store.profiles import parse_tags, person_name_problem

    who = chosen if current is not None else name.strip()
    try:
        if current is None and who in people and person_name_problem(who) is None:  # it replaced their profile
            raise LookalikeError(f"{who} is already here; choose them in the list above to edit their profile")
        lib.people.save_profile(who, Profile(display_name=display.strip() or None, role=role.strip() or None,
                                      organisation=organisation.strip() or None, story=story.strip() or None,
                                      tags=parse_tags(tags), consent_display=consent))
        rows = []
        if photos:
            # the models are shared with every visitor's search: add_photos takes the library's lock
            report, names = lib.add_photos(who, [(f.name, f.getvalue()) for f in photos])
            rows = [{"photo": names.get(o.path, "?"), "outcome": o.status.replace("_", " "),
                     "why": o.reason or "", "faces": o.faces} for o in report.outcomes]
        st.session_state["admin_done"] = (who, rows)
        st.session_state["admin_next"] = who
        st.rerun()
    except LookalikeError as err:
        st.error(f"Not saved: {err}")

if current is not None:
    st.subheader("Their photos")
    stored = lib.people.photos(chosen)
    st.dataframe(pd.DataFrame([{"photo": path.rsplit("/", 1)[-1], "outcome": status.replace("_", " "),
                                "why": reason or ""} for _, path, status, reason in stored],
                              columns=["photo", "outcome", "why"]), hide_index=True)
    left, right = st.columns(2)
    if current.consent:
        if left.button("Withdraw consent (off the kiosk at once)", key="admin_withdraw"):
            lib.people.set_consent(chosen, False)
            st.session_state["admin_said"] = f"Consent withdrawn: {chosen} is off the kiosk now."
            st.rerun()
    elif left.button("Record consent to be shown", key="admin_consent"):
        lib.people.set_consent(chosen, True)
        st.session_state["admin_said"] = f"Consent recorded: {chosen} is shown to visitors now."
        st.rerun()
    # one box per person: ticked for one, it was still ticked (the button armed) for the next
    sure = right.checkbox("Yes, remove every photo, face and profile of this person", key=f"admin_sure:{chosen}")
    if right.button("Remove this person entirely", disabled=not sure, key="admin_remove"):
        try:
            lib.remove_person(chosen)  # under the library's lock: it rewrites the index searches read
            st.session_state.pop("admin_person", None)
            st.rerun()
        except LookalikeError as err:
            st.error(f"Not removed: {err}")

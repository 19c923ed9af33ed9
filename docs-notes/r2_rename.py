# After merging a branch that still calls repo.X: run from the worktree root (python3 docs-notes/r2_rename.py),
# then `ruff check --fix --select F401,I lookalike tests bench`, and drop any `enqueue_faces` call in the
# ingest writer (the outbox listener records new faces; tests/test_outbox.py fails on a duplicate).
import json, re, subprocess, sys
fam = {
 'space_rows': 'get_space list_spaces create_space delete_space calibration save_calibration reduction_row save_reduction',
 'person_rows': 'upsert_person _insert Profile profiles PersonSummary people _profile set_consent display_tags anyone_withholds_consent literal_like normalise_tag person_matches person_ids_by_name person_by_name ProfileFields',
 'photo_rows': 'FaceRow StoredPhoto photos_outside photo_by_path Known _known known_by_path first_by_sha delete_photo face_ids face_count_and_max vectors face_rows photo_path person_photos problem_photos encode_vector decode_vector shown_faces person_ids_of person_face_ids estimate_rows photos_of_person photos_at PersonFaceRow person_face_rows CorpusFaceRow corpus_face_rows insert_rows delete_row',
 'centroid_rows': 'CENTROID_LOCK update_centroids centroid_generation centroids centroid_means',
 'key_rows': 'add_key api_keys key_scope revoke_key',
 'outbox': 'VECTORS_LOCK lock_vectors OUTBOX outboxed enqueue_faces enqueue_people outbox_batch clear_outbox outbox_count FilterFields filter_fields',
}
where = {n: m for m, ns in fam.items() for n in ns.split()}
files = subprocess.run(['grep', '-rlE', r'\brepo\b', 'lookalike', 'tests', 'bench', 'docs', '--include=*.py', '--include=*.md'], capture_output=True, text=True).stdout.split()
for f in files:
    if f == 'lookalike/store/repo.py' or f.startswith('docs-notes'):  # noqa
        continue
    s = open(f).read()
    orig = s
    used = set()
    def sub(m):
        mod = where.get(m.group(2))
        if mod is None:
            return m.group(0)
        used.add(mod)
        return m.group(1) + mod + '.' + m.group(2)
    # docstring refs lookalike.store.repo.X
    s = re.sub(r'(lookalike\.store\.)repo\.(\w+)', sub, s)
    s = re.sub(r'(?<![\w.])()repo\.(\w+)', sub, s)
    used_mods = set(used)
    # from X.store.repo import a, b
    def sub_from(m):
        indent, pkg, names = m.group(1), m.group(2), [n.strip() for n in m.group(3).split(',')]
        by = {}
        for n in names:
            base = n.split(' as ')[0].strip()
            by.setdefault(where[base], []).append(n)
        return '\n'.join(f"{indent}from {pkg}.{mod} import {', '.join(ns)}" for mod, ns in sorted(by.items()))
    s = re.sub(r'^( *)from (\S*?)\.?repo import ([\w ,]+)$', lambda m: sub_from(type('M', (), {'group': lambda self, i: {1: m.group(1), 2: (m.group(2) if m.group(2) else ''), 3: m.group(3)}[i]})()), s, flags=re.M)
    def sub_mod(m):
        indent, pkg, names = m.group(1), m.group(2), [n.strip() for n in m.group(3).split(',')]
        names = [n for n in names if n != 'repo'] + sorted(used_mods)
        return f"{indent}from {pkg} import {', '.join(sorted(set(names)))}"
    s = re.sub(r'^( *)from (\S*store) import ([\w ,]*\brepo\b[\w ,]*)$', sub_mod, s, flags=re.M)
    if s != orig:
        open(f, 'w').write(s)
        print(f, sorted(used_mods))

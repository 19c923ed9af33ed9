"""Milvus as the vector store, its pure parts (issue 18): the ``--vectors`` forms and what they
say when wrong, which backend each database pairs with, the FAISS index rules in Milvus's
index types, the filter expressions. No Milvus runs here (tests/test_milvus.py)."""

from __future__ import annotations

import pytest

from lookalike.config import Vectors, VectorsKind, parse_vectors
from lookalike.errors import ConfigError
from lookalike.index import choice
from lookalike.index.backends import FaissBackend, MilvusBackend, PgVectorBackend, for_settings
from lookalike.index.milvus_index import collection_name, expression
from lookalike.store.values import Audience, GroupKey


def test_vectors_forms_parse_and_bad_ones_say_what_works(tmp_path):
    assert parse_vectors("faiss") == Vectors(VectorsKind.faiss)
    assert parse_vectors(" PGVECTOR ") == Vectors(VectorsKind.pgvector)
    lite = parse_vectors(f"milvus-lite:{tmp_path}/vectors")
    assert lite.kind is VectorsKind.milvus_lite and lite.target == str(tmp_path / "vectors.db")  # pymilvus's mark
    assert str(lite) == f"milvus-lite:{tmp_path}/vectors.db" and lite.is_milvus
    assert parse_vectors("milvus://db.example.org:19530/") == Vectors(VectorsKind.milvus, "db.example.org:19530")
    for bad in ("annoy", "milvus-lite:", "milvus://host", "milvus://host:0", "milvus://:19530"):
        with pytest.raises(ConfigError, match="faiss, pgvector, milvus-lite:PATH or milvus://HOST:PORT"):
            parse_vectors(bad)
    with pytest.raises(ConfigError, match="LOOKALIKE_VECTORS"):
        parse_vectors("nope", "LOOKALIKE_VECTORS")
    # a user and password were read as the host ("Name or service not known") and printed in clear
    with pytest.raises(ConfigError, match="LOOKALIKE_MILVUS_TOKEN") as refused:
        parse_vectors("milvus://admin:MilvusPw99@db.example.org:19530")
    assert "MilvusPw99" not in str(refused.value) and "milvus://***@db.example.org" in str(refused.value)
    with pytest.raises(ConfigError, match="LOOKALIKE_MILVUS_TOKEN") as refused:
        parse_vectors("milvus://S3cretToken@db.example.org:19530")  # a token alone (Zilliz's keys)
    assert "S3cretToken" not in str(refused.value)


def test_each_database_gets_its_default_and_impossible_pairings_are_refused(tmp_path):
    assert isinstance(for_settings("sqlite", None), FaissBackend)
    assert isinstance(for_settings("postgresql", None), PgVectorBackend)
    lite = for_settings("sqlite", parse_vectors(f"milvus-lite:{tmp_path}/v.db"))
    assert isinstance(lite, MilvusBackend) and not lite.queued_ingest and lite.outbox
    server = for_settings("postgresql", parse_vectors("milvus://127.0.0.1:19530"))
    assert isinstance(server, MilvusBackend) and server.queued_ingest  # workers on many machines
    assert not for_settings("postgresql", parse_vectors(f"milvus-lite:{tmp_path}/v.db")).queued_ingest
    with pytest.raises(ConfigError, match="needs a PostgreSQL"):
        for_settings("sqlite", parse_vectors("pgvector"))
    with pytest.raises(ConfigError, match="needs a SQLite"):
        for_settings("postgresql", parse_vectors("faiss"))


def test_the_index_rules_in_milvus_types():
    flat = choice.milvus_spec(choice.choose(1_000, 128), lite=True)
    assert (flat.index_type, flat.build) == ("FLAT", {})
    hnsw = choice.milvus_spec(choice.choose(1_000_000, 128), lite=True)
    assert hnsw.index_type == "HNSW" and hnsw.build == {"M": 32, "efConstruction": 200} and hnsw.search == {"ef": 256}
    big = choice.choose(100_000_000, 128)  # past the memory budget: compressed codes
    assert big.key.startswith("IVF")
    on_server, in_lite = choice.milvus_spec(big, lite=False), choice.milvus_spec(big, lite=True)
    assert on_server.index_type == "IVF_PQ" and on_server.build["m"] == 64 and on_server.build["nbits"] == 8
    assert in_lite.index_type == "IVF_SQ8" and in_lite.build["nlist"] == on_server.build["nlist"]
    assert in_lite.search["nprobe"] == on_server.search["nprobe"] == on_server.build["nlist"] // 8
    assert choice.milvus_spec_by_name("diskann", 10, 128, lite=False).index_type == "DISKANN"
    with pytest.raises(ValueError, match="not an index type Milvus Lite builds"):
        choice.milvus_spec_by_name("DISKANN", 10, 128, lite=True)


def test_filter_expressions_match_as_the_database_does():
    assert expression([(GroupKey.tag, "Women in Science")], {}, Audience.operator) == \
        'array_contains(tags, "women-in-science")'
    assert expression([(GroupKey.organisation, ' Naval "Medical" '), (GroupKey.person, "amy")], {"amy": 7},
                      Audience.consented) == \
        'organisation == "naval \\"medical\\"" and person == 7 and consent == 1'
    assert expression([(GroupKey.role, "Nurse")], {}, Audience.visitor) == 'role == "nurse" and consent != 0'
    assert expression([(GroupKey.person, "nobody")], {}, Audience.operator) == "person == -2"
    assert collection_name("SFace__yunet__arcface", "1b39-86e0-0493-aaaa") == \
        "lookalike_SFace__yunet__arcface_1b3986e00493"


def test_serve_with_workers_on_milvus_lite_is_refused_at_start(tmp_path):
    """Each server process opens the library's Milvus Lite folder, which serves one: both
    said "ready" and three searches in four answered 503 busy (scale user test, F8)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "lookalike.cli", "serve", "--db", str(tmp_path / "lib.db"),
                           "--vectors", f"milvus-lite:{tmp_path / 'v'}", "--workers", "2", "--port", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Milvus Lite serves one process; serve with --workers 1" in done.stderr
    assert not (tmp_path / "lib.db").exists()  # refused before anything was opened

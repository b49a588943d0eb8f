"""search_similar is exact: the same ids in the same order as a numpy brute force; it follows writes."""

from __future__ import annotations

import numpy as np
import pytest

from analytics_helpers import count, fresh_duck
from dbtool.analytics.db import AnalyticsError
from dbtool.analytics.embeddings import add_embeddings, search_similar
from dbtool.analytics.erase import erase_phone

DIM = 384
PHONES = ["+5511900000001", "+5511900000002", "+5511900000003"]


def rows_for(vectors: np.ndarray, first_id: int = 1) -> list[dict]:
    return [{"id": first_id + i, "session_id": f"s{(first_id + i) % 7}", "phone_number": PHONES[(first_id + i) % 3],
             "content": f"message {first_id + i}", "embedding": v, "model_name": "test-384"}
            for i, v in enumerate(vectors)]


def brute_force(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    m = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = m @ (query / np.linalg.norm(query))
    order = np.lexsort((ids, -scores))
    return ids[order[:k]].tolist()


@pytest.fixture
def data():
    rng = np.random.default_rng(20240501)
    vectors = rng.standard_normal((3000, DIM)).astype(np.float32) * rng.uniform(0.1, 10, (3000, 1)).astype(np.float32)
    duck = fresh_duck()
    assert add_embeddings(duck, rows_for(vectors)) == 3000
    return duck, vectors, np.arange(1, 3001), rng


def test_stored_vectors_are_normalised(data):
    duck, vectors, _, _ = data
    norms = duck.execute("SELECT min(sqrt(list_dot_product(embedding::FLOAT[], embedding::FLOAT[]))),"
                         " max(sqrt(list_dot_product(embedding::FLOAT[], embedding::FLOAT[])))"
                         " FROM message_embeddings").fetchall()[0]
    assert norms[0] == pytest.approx(1, abs=1e-5) and norms[1] == pytest.approx(1, abs=1e-5)


def test_equals_numpy_brute_force(data):
    duck, vectors, ids, rng = data
    for _ in range(20):
        q = rng.standard_normal(DIM).astype(np.float32)
        for k in (1, 10, 57):
            assert [h.id for h in search_similar(duck, q, k=k)] == brute_force(vectors, ids, q, k)


def test_scores_are_cosines_and_details_come_back(data):
    duck, vectors, ids, _ = data
    hits = search_similar(duck, vectors[41] * 3, k=3)  # the stored row 42 itself, scaled
    assert hits[0].id == 42 and hits[0].score == pytest.approx(1, abs=1e-5)
    assert (hits[0].content, hits[0].model_name, hits[0].session_id) == ("message 42", "test-384", "s0")
    assert hits[0].phone_number == PHONES[0]
    expected = float(vectors[41] @ vectors[hits[1].id - 1]
                     / np.linalg.norm(vectors[41]) / np.linalg.norm(vectors[hits[1].id - 1]))
    assert hits[1].score == pytest.approx(expected, abs=1e-5)
    bare = search_similar(duck, vectors[41], k=3, with_content=False)
    assert [h.id for h in bare] == [h.id for h in hits] and bare[0].content is None


def test_for_one_phone_equals_brute_force_on_its_rows(data):
    duck, vectors, ids, rng = data
    mine = np.array([PHONES[i % 3] == PHONES[1] for i in ids])
    for _ in range(5):
        q = rng.standard_normal(DIM).astype(np.float32)
        hits = search_similar(duck, q, k=10, phone_number=PHONES[1])
        assert {h.phone_number for h in hits} == {PHONES[1]}
        assert [h.id for h in hits] == brute_force(vectors[mine], ids[mine], q, 10)
    assert search_similar(duck, vectors[0], phone_number="+0000") == []


def test_ties_come_out_by_id(data):
    duck, _, _, _ = data
    v = np.ones(DIM, np.float32)
    add_embeddings(duck, rows_for(np.stack([v, 2 * v, 3 * v]), first_id=10_001))
    assert [h.id for h in search_similar(duck, v, k=3)] == [10_001, 10_002, 10_003]


def test_follows_inserts_replacements_and_erasure(data):
    duck, vectors, ids, rng = data
    q = rng.standard_normal(DIM).astype(np.float32)
    search_similar(duck, q)  # load the matrix
    add_embeddings(duck, rows_for(q[None, :], first_id=5000))
    assert search_similar(duck, q, k=1)[0].id == 5000
    add_embeddings(duck, rows_for(-q[None, :], first_id=5000))  # same id, replaced: now the worst match
    assert search_similar(duck, q, k=1)[0].id != 5000
    assert search_similar(duck, -q, k=1)[0].id == 5000
    phone = PHONES[5000 % 3]
    erased = erase_phone(duck, phone)
    assert erased["message_embeddings"] == 1001  # 1000 of the 3000 rows, and id 5000
    hits = search_similar(duck, -q, k=50)
    assert all(h.phone_number != phone for h in hits) and len(hits) == 50
    assert count(duck, "message_embeddings") == 2000


def test_wrong_dimensions_and_zero_vectors_are_refused(data):
    duck, _, _, _ = data
    with pytest.raises(AnalyticsError, match="383 dimensions"):
        search_similar(duck, np.ones(383))
    with pytest.raises(AnalyticsError, match="expects 384"):
        add_embeddings(duck, rows_for(np.ones((1, 10), np.float32), first_id=9000))
    with pytest.raises(AnalyticsError, match="zero"):
        add_embeddings(duck, rows_for(np.zeros((1, DIM), np.float32), first_id=9000))
    assert count(duck, "message_embeddings") == 3000  # nothing half-written

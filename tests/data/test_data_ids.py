"""Data ids (keyed hashes), their Merkle root, duplicates, pools and digests."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from tclearn.data import (
    EMPTY_ROOT,
    DataPool,
    Dataset,
    concat_datasets,
    data_id,
    dataset_ids,
    find_duplicates,
    merkle_root,
)
from tclearn.errors import DataError

KEY = b"coalition-key-0123456789abcdef!!"


def _tiny(n: int = 6) -> Dataset:
    x = torch.arange(n * 4, dtype=torch.float32).reshape(n, 1, 2, 2)
    return Dataset(x, torch.arange(n, dtype=torch.int64) % 3)


def test_data_id_is_keyed_hmac() -> None:
    i = data_id(KEY, b"sample")
    assert len(i) == 64 and i == i.lower() and int(i, 16) >= 0
    assert i == data_id(KEY, b"sample")
    assert i != data_id(b"another-key-0123456789abcdef!!!!", b"sample")
    assert i != hashlib.sha256(b"sample").hexdigest()
    with pytest.raises(DataError):
        data_id(b"short", b"sample")


def test_dataset_ids_follow_content() -> None:
    ds = _tiny()
    ids = dataset_ids(KEY, ds)
    assert len(set(ids)) == len(ds)
    assert dataset_ids(KEY, ds.subset([2, 0])) == (ids[2], ids[0])
    changed = ds.x.clone()
    changed[1, 0, 0, 0] += 1.0
    assert dataset_ids(KEY, Dataset(changed, ds.y))[1] != ids[1]
    # the target is part of the sample
    assert dataset_ids(KEY, Dataset(ds.x, (ds.y + 1) % 3))[0] != ids[0]


def test_merkle_root_vectors() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").hexdigest()
    a, b, c = (hashlib.sha256(bytes([k])).hexdigest() for k in range(3))
    leaf = {i: hashlib.sha256(b"\x00" + bytes.fromhex(i)).digest() for i in (a, b, c)}
    assert merkle_root([a]) == leaf[a].hex()
    s = sorted([a, b, c])
    left = hashlib.sha256(b"\x01" + leaf[s[0]] + leaf[s[1]]).digest()
    expected = hashlib.sha256(b"\x01" + left + leaf[s[2]]).hexdigest()
    assert merkle_root([c, a, b]) == merkle_root([a, b, c]) == expected
    assert merkle_root([a, b, c, c]) != expected  # no odd-node duplication ambiguity
    with pytest.raises(DataError):
        merkle_root(["not-an-id"])
    with pytest.raises(DataError):
        merkle_root([a.upper()])


def test_find_duplicates() -> None:
    ids = dataset_ids(KEY, _tiny())
    assert find_duplicates(ids) == ()
    assert find_duplicates([ids[0], ids[1], ids[0]]) == (ids[0],)
    assert find_duplicates(ids[:3], seen=[ids[2], ids[5]]) == (ids[2],)
    # the same sample twice in a data set gets the same id
    twice = concat_datasets([_tiny(), _tiny().subset([4])])
    assert find_duplicates(dataset_ids(KEY, twice)) == (ids[4],)


def test_pool_draws_fresh_samples_first_then_reuses_contributed_ones() -> None:
    pool = DataPool(_tiny(8), KEY)
    rng = np.random.default_rng(0)
    b = pool.draw_batch(4, rng, local_test_share=0.25)
    assert len(b.new_ids) == 3 and len(b.local_test_ids) == 1 and b.reused_ids == ()
    assert len(set(b.new_ids + b.local_test_ids)) == 4 and set(b.new_ids) <= set(pool.ids)
    assert pool.contributed == frozenset() and pool.held_out == frozenset()  # drawing marks nothing
    pool.hold_out(b.local_test_ids)
    pool.mark_contributed(b.new_ids)
    c = pool.draw_batch(6, rng)  # 4 fresh left: all of them new, then 2 re-used
    assert len(c.new_ids) == 4 and len(c.reused_ids) == 2 and set(c.reused_ids) <= set(b.new_ids)
    assert not set(c.train_ids) & set(b.local_test_ids)  # the local-test share is never trained on
    pool.mark_contributed(c.new_ids)
    d = pool.draw_batch(7, rng)  # all 7 trainable samples, every one re-used
    assert d.new_ids == () and len(d.reused_ids) == 7
    with pytest.raises(DataError):
        pool.draw_batch(8, rng)  # one sample is held out: only 7 are trainable
    # a sample some other member contributed is re-used here, never claimed as new
    fresh = DataPool(_tiny(8), KEY)
    e = fresh.draw_batch(8, rng, spent={pool.ids[0]})
    assert pool.ids[0] in e.reused_ids and pool.ids[0] not in e.new_ids
    with pytest.raises(DataError):
        pool.mark_contributed(["0" * 64])


def test_dataset_digest_and_validation() -> None:
    ds = _tiny()
    assert ds.digest() == _tiny().digest()
    assert ds.digest() != ds.subset([1, 0, 2, 3, 4, 5]).digest()
    as_masks = Dataset(ds.x, ds.y.to(torch.uint8))
    assert as_masks.sample_bytes(0) != ds.sample_bytes(0)  # the dtype is part of the encoding
    with pytest.raises(DataError):
        Dataset(ds.x, ds.y[:3])
    with pytest.raises(DataError):
        Dataset(ds.x.double(), ds.y)
    with pytest.raises(DataError):
        Dataset(ds.x * float("nan"), ds.y)
    with pytest.raises(DataError):
        ds.subset([7])

"""`search.runtime.shared_data`: a dataset goes to the object store once and comes back by
reference (Ray's `put` and `get` replaced by a dict: no Ray)."""

from __future__ import annotations

import pickle
import sys
import types

from search.runtime import shared_data


def test_share_puts_once_and_every_get_reads_that_copy(monkeypatch):
    store: dict[int, object] = {}

    def put(value: object) -> int:
        store[len(store)] = value
        return len(store) - 1

    fake = types.SimpleNamespace(put=put, get=lambda ref: store[ref])
    monkeypatch.setitem(sys.modules, "ray", fake)
    data = {"train": [1, 2, 3]}
    shared = shared_data.share(data)
    assert len(store) == 1 and shared.get() is data
    again = pickle.loads(pickle.dumps(shared))  # what travels to a trial: the reference only
    assert again.get() is data and len(store) == 1

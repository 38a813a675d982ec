"""`search.runtime.storage_sync`: uploads at most once per interval, and a failed upload
never stops the search."""

from __future__ import annotations

import pickle

from search.runtime.storage_sync import StorageSync


class FakeStorage:
    uri = "s3://bucket/run"

    def __init__(self, fail: bool = False):
        self.calls, self.fail = 0, fail

    def upload(self) -> int:
        self.calls += 1
        if self.fail:
            raise OSError("no route")
        return 1


def test_uploads_at_most_once_per_interval():
    store = FakeStorage()
    sync = StorageSync(store, every_s=3600)
    assert not sync.maybe_upload() and store.calls == 0  # the driver just uploaded
    sync.every_s = 0
    assert sync.maybe_upload() and store.calls == 1
    sync.on_trial_complete(0, [], None)
    sync.on_trial_error(0, [], None)
    assert store.calls == 3


def test_a_failed_upload_is_logged_not_raised(caplog):
    sync = StorageSync(FakeStorage(fail=True), every_s=0)
    assert sync.maybe_upload() is False
    assert "could not copy" in caplog.text


def test_restored_with_the_tuner_it_starts_a_fresh_interval():
    sync = pickle.loads(pickle.dumps(StorageSync(FakeStorage(), every_s=3600)))
    assert not sync.maybe_upload()

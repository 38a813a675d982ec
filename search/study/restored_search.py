"""The search's generator of trials, whose restored state agrees with the restored trial list.

Tune uploads its snapshot file by file: the trial list, the search generator's state (how many
trials it made, the concurrency limiter's live trials) and the searcher's (the Optuna study). A
driver killed between two files leaves them from different moments. Restored as they are, a
searcher ahead of the trial list has counted trials that no longer exist: the search ends short
of `--num-samples`, the limiter waits for their end forever, and Optuna's constant liar counts
them as running for good; one behind the list does not know trials that then report to it.
`SnapshotSearch` reconciles after Tune restores it: the trials made are those of the list, the
limiter's live trials are among them, and the searcher forgets the others (`forget_unsaved`).
Tested in `tests/search/study/test_restored_search.py`.
"""

from __future__ import annotations

from typing import Any

from ray.tune.search import ConcurrencyLimiter, SearchGenerator

from search.runtime import snapshot


class SnapshotSearch(SearchGenerator):
    """Tune's `SearchGenerator` over the search's searcher, reconciled on restore."""

    def restore_from_dir(self, dirpath: str) -> None:
        super().restore_from_dir(dirpath)
        saved = snapshot.statuses(dirpath)  # the trial list Tune restored, downloaded there
        if saved is not None:
            self.reconcile(set(saved))

    def reconcile(self, saved: set[str]) -> list[str]:
        """Make the generator's and its wrappers' counts those of the `saved` trial ids;
        returns the ids the searcher had made that the list lacks."""
        self._counter = len(saved)
        forgotten: list[str] = []
        searcher: Any = self.searcher
        while searcher is not None:
            if isinstance(searcher, ConcurrencyLimiter):
                searcher.live_trials = {t for t in searcher.live_trials if t in saved}
            if hasattr(searcher, "forget_unsaved"):
                forgotten = searcher.forget_unsaved(saved)
            searcher = getattr(searcher, "searcher", None)
        if forgotten:
            print(
                f"The searcher's snapshot held {len(forgotten)} trial(s) that Tune's trial list "
                f"does not ({', '.join(forgotten)}; the driver was killed between the two "
                "files): told failed, their places drawn again",
                flush=True,
            )
        return forgotten

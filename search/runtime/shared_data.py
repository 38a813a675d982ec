"""One copy of each dataset per Ray cluster: put in the object store once, passed by reference.

Trials (through `tune.with_parameters`), the best configuration's seed re-runs and a sweep's
test scoring all read the same object, so the driver never puts a dataset twice. On each node
the tensors come back as read-only views of the node's copy (`search.runtime.session.ray_env`
turns on Ray's zero-copy torch tensors). Tested in `tests/search/runtime/test_shared_data.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SharedData:
    """A dataset in the object store (its reference travels inside this small object)."""

    ref: Any  # ray.ObjectRef

    def get(self) -> Any:
        import warnings

        import ray

        with warnings.catch_warnings():  # the tensors are read-only views on purpose
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")
            return ray.get(self.ref)


def share(dataset: Any) -> SharedData:
    import ray

    return SharedData(ray.put(dataset))

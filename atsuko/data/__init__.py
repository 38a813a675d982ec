"""The dataset layer: registry, loaders (MMSA pickles, MIntRec folders, .npz copies), checks,
whole-split tensors with index batching, and synthetic stand-ins with planted structure."""

from atsuko.data.checks import DataWarning
from atsuko.data.dataset import Batch, Dataset, Split, batches
from atsuko.data.load import default_path, load, load_for_run, load_from_config
from atsuko.data.registry import DatasetSpec, dataset_names, get_spec

__all__ = [
    "Batch",
    "DataWarning",
    "Dataset",
    "DatasetSpec",
    "Split",
    "batches",
    "dataset_names",
    "default_path",
    "get_spec",
    "load",
    "load_for_run",
    "load_from_config",
]

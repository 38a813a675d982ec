"""Router diagnostics for the best configuration (the paper's Figures 4 and 5).

The best configuration is trained four times with `atsuko.train.fit` (a small budget): the full
model and its ablations `use_sbr` x `use_mcm`. Then, on the test split:

- modality weights `w` of a random set of test samples from the model with MCM and the one
  without it, side by side (Figure 5);
- mean band weights `alpha` per modality (and, on synthetic data, the planted band);
- how often the router's top modality agrees with the top of the complementarity distribution
  `c` (the MCM branches run in eval mode for this: `forward(..., branches=True)`), and on
  synthetic data how often each points at the modality that decided the sample;
- t-SNE (scikit-learn) of the fused features `z` of all four variants, coloured by label.

Writes `OUT/diagnostics/diagnostics.json` and `arrays.npz`; `search.analysis.figures` draws them.
After a search (`--diagnostics`) the four models train in one Ray task with a trial's resources
(`run_diagnostics_on_ray`), not in the driver: on the cloud configs the driver runs on a head
node with no CPU for training and no GPU.
Shapes: N samples, M modalities, K bands, d width.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atsuko import config as cfg
from atsuko.config import Config
from atsuko.errors import ConfigError
from atsuko.model.band_router import mean_band_weights
from search import layout

VARIANTS = {  # name -> (use_sbr, use_mcm)
    "full": (True, True),
    "no_mcm": (True, False),
    "no_sbr": (False, True),
    "baseline": (False, False),
}


def best_config(out: Path, config: str | Path | None = None, **overrides: Any) -> Config:
    """The configuration to diagnose: `config`, else the search's `best_config.yaml`."""
    path = Path(config) if config else out / layout.BEST_CONFIG
    if not path.is_file():
        raise ConfigError(
            f"diagnostics: no {path.name} in {path.parent}; finish a search first or give a "
            "config file"
        )
    return cfg.resolve(path, overrides)


def train_variant(config: Config, dataset: Any, use_sbr: bool, use_mcm: bool) -> tuple[Any, Any]:
    """Fit one ablation variant; returns (its Trainer with the best epoch restored, FitResult)."""
    from atsuko.train import fit

    variant = config.replace(use_sbr=use_sbr, use_mcm=use_mcm)
    result = fit(variant, dataset, score_test=True, log=None)
    return result.trainer, result


def forward_split(trainer: Any, split_name: str = "test") -> dict[str, Any]:
    """The model's router outputs on a whole split: w (N, M), alpha m -> (N, K), z (N, d),
    c (N, M) when the model has MCM (its branches run in eval mode), labels (N,)."""
    mcm = trainer.model.mcm is not None
    parts: dict[str, list] = {"w": [], "z": [], "c": [], "labels": []}
    alphas: dict[str, list] = {}
    present: dict[str, list] = {}  # m -> (B, K) bool: the bands each sample has
    for batch, out in trainer.outputs(split_name, branches=mcm):
        if mcm:
            parts["c"].append(trainer.complementarity(out, batch.labels).float().cpu())
        parts["w"].append(out.w.float().cpu())
        parts["z"].append(out.z.float().cpu())
        parts["labels"].append(batch.labels.cpu())
        for m, a in out.alpha.items():
            alphas.setdefault(m, []).append(a.float().cpu())
            present.setdefault(m, []).append(out.band_mask[m].cpu())
    result: dict[str, Any] = {
        "w": torch.cat(parts["w"]).numpy(),  # (N, M)
        "z": torch.cat(parts["z"]).numpy(),  # (N, d)
        "labels": torch.cat(parts["labels"]).numpy(),  # (N,)
        "c": torch.cat(parts["c"]).numpy() if parts["c"] else None,  # (N, M)
        "alpha": {m: torch.cat(a).numpy() for m, a in alphas.items()},  # m -> (N, K)
        "band_mask": {m: torch.cat(p).numpy() for m, p in present.items()},  # m -> (N, K)
    }
    return result


def agreement(w: np.ndarray, c: np.ndarray) -> float:
    """Fraction of samples whose router top modality is the complementarity top."""
    return float(np.mean(w.argmax(axis=1) == c.argmax(axis=1)))


def decider_hits(
    top: np.ndarray, decider: np.ndarray, deciders: list[str], modalities: list[str]
) -> dict[str, float]:
    """On samples decided by one modality (synthetic data): how often `top` names it."""
    hits: dict[str, float] = {}
    for i, name in enumerate(deciders):
        if name not in modalities:
            continue  # e.g. 'audio+vision': no single right answer
        sel = decider == i
        if sel.any():
            hits[name] = float(np.mean(top[sel] == modalities.index(name)))
    return hits


def tsne(z: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of (N, d) features; perplexity kept below N/3 for small test splits."""
    from sklearn.manifold import TSNE

    n = len(z)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        z.astype(np.float64)
    )


def run_diagnostics(
    out: str | Path,
    *,
    config: str | Path | None = None,
    epochs: int | None = None,
    samples: int = 20,
    tsne_points: int = 500,
    seed: int = 0,
    device: str = "auto",
    log: Any = print,
) -> Path:
    """Train the four variants of the best config here and write the diagnostics; returns the
    JSON. (After a search, `run_diagnostics_on_ray` trains them on the cluster instead.)"""
    from atsuko.data import load_for_run

    out = Path(out)
    base = _diagnosed_config(out, config, epochs, device)
    start = time.time()
    dataset = load_for_run(base, log=log)
    doc, arrays = diagnose(
        base, dataset, samples=samples, tsne_points=tsne_points, seed=seed, log=log
    )
    doc["config"] = str(config or out / layout.BEST_CONFIG)
    doc["seconds"] = time.time() - start
    return write_diagnostics(out, doc, arrays, log)


def run_diagnostics_on_ray(
    out: str | Path,
    *,
    cpus: float,
    gpus: float,
    epochs: int | None = None,
    log: Any = print,
    **kwargs: Any,
) -> Path:
    """As `run_diagnostics`, with the training in one Ray task holding a trial's resources
    (`cpus`, `gpus`: on the cloud configs the driver's head node has no CPU for training and no
    GPU). Ray must be initialised (the search's cluster, or a local Ray); the dataset is loaded
    here, in the driver, as the search's, and reaches the task through the object store."""
    import ray

    from atsuko.data import load_for_run
    from search.provenance import sha256_file

    out = Path(out)
    base = _diagnosed_config(out, None, epochs, "cuda" if gpus > 0 else "cpu")
    start = time.time()
    dataset = load_for_run(base, log=log)  # frozen text states computed here, as the search's
    source = dataset.source
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_diagnose_task)
    if log:
        log(f"diagnostics: training the four variants in a Ray task ({cpus:g} CPU, {gpus:g} GPU)")
    ref = task.remote(base.to_dict(), ray.put(dataset), max(1, int(cpus)), kwargs)
    del dataset  # the object store holds it now
    doc, arrays = ray.get(ref)
    doc["config"] = str(out / layout.BEST_CONFIG)
    doc["data"] = {"source": source, "sha256": sha256_file(source)}  # as the driver sees it
    doc["seconds"] = time.time() - start
    return write_diagnostics(out, doc, arrays, log)


def _diagnose_task(
    config: dict[str, Any], dataset: Any, threads: int, kwargs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """`diagnose` as a Ray task (its progress lines go to the driver through Ray's log)."""
    import os

    import ray

    torch.set_num_threads(threads)
    doc, arrays = diagnose(cfg.from_dict(config), dataset, log=print, **kwargs)
    doc["ran_on"] = {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}
    return doc, arrays


def _diagnosed_config(
    out: Path, config: str | Path | None, epochs: int | None, device: str
) -> Config:
    overrides: dict[str, Any] = {"train.device": device}
    if epochs is not None:
        overrides["train.epochs"] = epochs
    return best_config(out, config, **overrides)


def diagnose(
    base: Config,
    dataset: Any,
    *,
    samples: int = 20,
    tsne_points: int = 500,
    seed: int = 0,
    log: Any = print,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Train the four variants of `base` on `dataset`; the diagnostics' JSON document (without
    `config` and `seconds`) and arrays."""
    from search.provenance import sha256_file, versions

    modalities = sorted(dataset.dims)
    test = dataset.splits["test"]
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(test), size=min(samples, len(test)), replace=False))
    embed = np.sort(rng.choice(len(test), size=min(tsne_points, len(test)), replace=False))
    doc: dict[str, Any] = {
        "dataset": base.data.dataset,
        "task": dataset.spec.task,
        "epochs": base.train.epochs,
        "train_seed": base.train.seed,
        "sample_seed": seed,
        "modalities": modalities,
        "samples": picked.tolist(),
        "variants": {},
        "data": {"source": dataset.source, "sha256": sha256_file(dataset.source)},
        "planted": dataset.planted,
        "versions": versions(),
    }
    arrays: dict[str, np.ndarray] = {"samples": picked, "tsne_index": embed}
    outputs = {}
    for name, (use_sbr, use_mcm) in VARIANTS.items():
        if log:
            log(f"diagnostics: training {name} (use_sbr={use_sbr}, use_mcm={use_mcm}) ...")
        trainer, result = train_variant(base, dataset, use_sbr, use_mcm)
        outputs[name] = forward_split(trainer, "test")
        doc["variants"][name] = {
            "use_sbr": use_sbr,
            "use_mcm": use_mcm,
            "best_epoch": result.best_epoch,
            "valid": result.valid,
            "test": result.test,
        }
    _compare(doc, arrays, outputs, dataset, picked)
    arrays["tsne_labels"] = outputs["full"]["labels"][embed]
    for name in VARIANTS:
        arrays[f"tsne_{name}"] = tsne(outputs[name]["z"][embed], seed)  # (N, 2)
    return doc, arrays


def write_diagnostics(
    out: Path, doc: dict[str, Any], arrays: dict[str, np.ndarray], log: Any = print
) -> Path:
    """`OUT/diagnostics/diagnostics.json` and `arrays.npz`; returns the JSON's path."""
    folder = out / layout.DIAG_DIR
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / layout.DIAG_ARRAYS, **arrays)
    path = folder / layout.DIAG_JSON
    path.write_text(json.dumps(doc, indent=2, default=_plain) + "\n")
    if log:
        log(f"diagnostics: {path}")
    return path


def _compare(
    doc: dict[str, Any],
    arrays: dict[str, np.ndarray],
    outputs: dict[str, dict[str, Any]],
    dataset: Any,
    picked: np.ndarray,
) -> None:
    """With and without MCM: router weights of the picked samples, band weights, how often the
    router's top modality is the complementarity's, and (planted data) the deciders found."""
    modalities = sorted(dataset.dims)
    test = dataset.splits["test"]
    full, no_mcm = outputs["full"], outputs["no_mcm"]
    arrays["w_with_mcm"] = full["w"][picked]  # (S, M)
    arrays["w_without_mcm"] = no_mcm["w"][picked]
    # each band's mean over the test samples that have it (0.0 where none does)
    for key, run in (("band_weights", full), ("band_weights_no_mcm", no_mcm)):
        doc[key] = {
            m: mean_band_weights(torch.from_numpy(a), torch.from_numpy(run["band_mask"][m]))
            for m, a in run["alpha"].items()
        }
    if full["c"] is not None:
        doc["agreement"] = {
            "router_vs_complementarity": agreement(full["w"], full["c"]),
            "without_mcm_router_vs_complementarity": agreement(no_mcm["w"], full["c"]),
            "chance": 1.0 / len(modalities),
        }
        arrays["c"] = full["c"][picked]
    decider = test.extras.get("decider")
    if dataset.planted and decider is not None:
        names = list(dataset.planted.get("deciders", []))
        d = decider.cpu().numpy()
        doc["planted_hits"] = {
            "complementarity_top": decider_hits(full["c"].argmax(1), d, names, modalities)
            if full["c"] is not None
            else {},
            "router_top_with_mcm": decider_hits(full["w"].argmax(1), d, names, modalities),
            "router_top_without_mcm": decider_hits(no_mcm["w"].argmax(1), d, names, modalities),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def load_diagnostics(out: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The JSON and arrays written by `run_diagnostics` (None if absent or unreadable)."""
    folder = Path(out) / layout.DIAG_DIR
    try:
        doc = json.loads((folder / layout.DIAG_JSON).read_text())
        with np.load(folder / layout.DIAG_ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    return doc, arrays

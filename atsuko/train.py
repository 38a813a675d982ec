"""Fit and evaluate one configuration: the project's one training loop.

`fit` is used unchanged by the search (its trainable reports and checkpoints from `on_epoch`).
Selection is on the validation split only; the test split is scored once, at the end.
`python -m atsuko.train --dataset mosi --synthetic --json` runs it from the command line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atsuko import config as cfg
from atsuko import device as dev
from atsuko.checkpoint import numpy_rng_state, set_numpy_rng_state
from atsuko.config import Config
from atsuko.data import Batch, Dataset, batches, load_for_run
from atsuko.data.bert_states import with_frozen_states
from atsuko.data.folds import with_fold
from atsuko.metrics import score
from atsuko.model import Atsuko
from atsuko.model.band_router import mean_band_weights


class NonFiniteLoss(RuntimeError):
    """Training diverged: a loss, or the validation score, became NaN or infinite (the
    model's predictions are no longer numbers): the run cannot go on."""


@dataclass
class EpochRecord:
    epoch: int  # 1-based
    train: dict[str, float]  # mean loss terms
    valid: dict[str, float]  # validation metrics, by the names of `atsuko.metrics`
    # 'w/<m>' and 'alpha/<m>/<k>' means over the validation split; alpha/<m>/<k> over the
    # samples that have band k (all but sequences shorter than K), 0.0 when none has it
    router: dict[str, float]
    score: float  # valid[select metric]
    best_score: float
    best_epoch: int
    seconds: float


@dataclass
class FitResult:
    best_epoch: int
    valid: dict[str, float]
    test: dict[str, float] | None
    history: list[EpochRecord]
    config: Config
    trainer: Trainer | None = field(default=None, repr=False)  # the best epoch restored


@dataclass
class Evaluation:
    metrics: dict[str, float]
    router: dict[str, float]
    pred: np.ndarray = field(repr=False)


def select_spec(config: Config, dataset: Dataset) -> tuple[str, str]:
    """The validation metric and direction that pick epochs and configurations."""
    metric = config.train.select_metric or dataset.spec.select_metric
    mode = config.train.select_mode or dataset.spec.select_mode
    if metric not in dataset.spec.metrics:
        raise cfg.ConfigError(
            f"train.select_metric '{metric}' is not a {dataset.spec.name} metric; "
            f"expected one of: {', '.join(dataset.spec.metrics)}"
        )
    return metric, mode


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """One model, its optimiser and its selection state; `fit` drives it epoch by epoch.

    `gpu_share`: this process's share of its GPU, which bounds the splits moved there (default:
    what Ray assigned to this worker, 1.0 outside Ray; see `atsuko.device`)."""

    def __init__(
        self,
        config: Config,
        dataset: Dataset,
        *,
        device: str | None = None,
        gpu_share: float | None = None,
    ):
        self.config, self.dataset = config, dataset
        self.metric, self.mode = select_spec(config, dataset)
        if config.train.threads > 0:
            torch.set_num_threads(config.train.threads)
        self.device = dev.pick_device(device or config.train.device)
        self.deterministic = config.train.deterministic
        dev.set_deterministic(self.deterministic, self.device)
        self.amp_dtype = dev.autocast_dtype(config.train.precision, self.device)
        if config.model.bert_freeze:  # a no-op on a dataset already encoded (a search's)
            dataset = self.dataset = with_frozen_states(config, dataset)
        dataset = self.dataset = with_fold(config.data, dataset)  # a no-op without data.folds
        seed_everything(config.train.seed)
        self.model = Atsuko(
            config=config.model,
            dims=dataset.dims,
            num_outputs=dataset.spec.num_outputs,
            task=dataset.spec.task,
        ).to(self.device)
        self.optimizer = torch.optim.AdamW(
            self.model.optimizer_groups(config.train.weight_decay, config.train.bert_lr),
            lr=config.train.lr,
        )
        self.generator = torch.Generator().manual_seed(config.train.seed)
        share = dev.assigned_gpu_share() if gpu_share is None else gpu_share
        self.splits, self.on_device = dev.place_splits(dataset.splits, self.device, share)
        self.epoch = 0
        self.best_score = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[EpochRecord] = []

    def _autocast(self) -> contextlib.AbstractContextManager:
        """The context of training steps: autocast at `train.precision`."""
        return dev.compute(self.device, self.amp_dtype, self.deterministic)

    def _float32(self) -> contextlib.AbstractContextManager:
        """The context of evaluation: float32, so scores match across devices and precisions."""
        return dev.compute(self.device, None, self.deterministic)

    def better(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return value < self.best_score if self.mode == "min" else value > self.best_score

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training split; returns the sample-weighted mean loss terms."""
        self.model.train()
        sums: dict[str, float] = {}
        seen = 0
        split = self.splits["train"]
        epoch = self.epoch + 1
        for step, batch in enumerate(
            batches(split, self.config.train.batch_size, shuffle=True, generator=self.generator)
        ):
            batch = batch.to(self.device)
            with self._autocast():
                out = self.model(batch.features, batch.lengths, batch.extras)
                losses = self.model.loss(out, batch.labels, epoch)
            if not torch.isfinite(losses.total):
                terms = ", ".join(f"{k} {v:.4g}" for k, v in losses.terms.items())
                raise NonFiniteLoss(f"non-finite loss at epoch {epoch}, step {step + 1} ({terms})")
            self.optimizer.zero_grad(set_to_none=True)
            losses.total.backward()
            if self.config.train.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.grad_clip)
            self.optimizer.step()
            n = len(batch.labels)
            seen += n
            sums["loss"] = sums.get("loss", 0.0) + float(losses.total.detach()) * n
            for key, value in losses.terms.items():
                sums[key] = sums.get(key, 0.0) + float(value) * n
        return {k: v / max(seen, 1) for k, v in sums.items()}

    @torch.no_grad()
    def evaluate(self, split_name: str) -> Evaluation:
        """Metrics and mean router weights on one split, computed in float32 whatever the
        training precision (MCM branches do not run here)."""
        split = self.splits[split_name]
        preds, ws, alphas, present = [], [], {}, {}
        size = max(self.config.train.batch_size, 256)
        for _, out in self.outputs(split_name, batch_size=size):
            preds.append(out.pred.float().cpu())
            ws.append(out.w.float().cpu())
            for m, a in out.alpha.items():
                alphas.setdefault(m, []).append(a.float().cpu())
                present.setdefault(m, []).append(out.band_mask[m].cpu())
        pred = torch.cat(preds).numpy()
        metrics = score(self.dataset.spec.name, pred, split.labels.cpu().numpy())
        router = {}
        w = torch.cat(ws).mean(0)
        for i, m in enumerate(sorted(self.dataset.dims)):
            router[f"w/{m}"] = float(w[i])
        for m, parts in alphas.items():  # each band: mean over the samples that have it
            means = mean_band_weights(torch.cat(parts), torch.cat(present[m]))
            for k, value in enumerate(means):
                router[f"alpha/{m}/{k}"] = float(value)
        return Evaluation(metrics=metrics, router=router, pred=pred)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs, tensors on the CPU (a checkpoint loads on any machine);
        the RNG states of python, numpy, torch's CPU and this run's CUDA device."""
        return {
            "model": dev.to_cpu(self.model.state_dict()),
            "optimizer": dev.to_cpu(self.optimizer.state_dict()),
            "epoch": self.epoch,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "best_state": dev.to_cpu(self.best_state),
            "history": [dataclasses.asdict(r) for r in self.history],
            "generator": self.generator.get_state(),
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": numpy_rng_state(),
                "python": random.getstate(),
                **dev.rng_state(self.device),
            },
            "config": self.config.to_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = state["epoch"]
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        self.best_state = state["best_state"]
        self.history = [EpochRecord(**r) for r in state["history"]]
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["rng"]["torch"])
        set_numpy_rng_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        dev.set_rng_state(state["rng"], self.device)

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    @torch.no_grad()
    def outputs(
        self, split_name: str, *, branches: bool = False, batch_size: int = 256
    ) -> Iterator[tuple[Batch, Any]]:
        """The model's outputs on one split in evaluation mode, batch by batch, in order:
        (batch on the device, AtsukoOutput), in float32 like `evaluate`; `branches` also runs
        the MCM branches."""
        self.model.train(False)  # evaluation mode
        for batch in batches(self.splits[split_name], batch_size, shuffle=False):
            batch = batch.to(self.device)
            with self._float32():
                out = self.model(batch.features, batch.lengths, batch.extras, branches=branches)
            yield batch, out

    @torch.no_grad()
    def complementarity(self, out: Any, labels: torch.Tensor) -> torch.Tensor:
        """The MCM complementarity distribution c (B, M) of one batch's outputs (with branches)."""
        with self._float32():
            return self.model.loss(out, labels, epoch=10**9).c


def _format_epoch(r: EpochRecord, epochs: int, metric: str, improved: bool) -> str:
    terms = " ".join(f"{k} {v:.3f}" for k, v in r.train.items() if k != "loss")
    weights = " ".join(f"{k[2:]} {v:.2f}" for k, v in r.router.items() if k.startswith("w/"))
    mark = " *" if improved else ""
    return (
        f"epoch {r.epoch:>3}/{epochs}  loss {r.train.get('loss', float('nan')):.4f} ({terms})  "
        f"valid {metric} {r.score:.4f}{mark}  w [{weights}]  {r.seconds:.1f}s"
    )


class _Board:
    """TensorBoard scalars per epoch (tensorboardX), or nothing without an output folder."""

    def __init__(self, out: Path | None):
        self.writer = None
        if out is not None:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(str(out / "tb"))

    def log(self, r: EpochRecord) -> None:
        if self.writer is None:
            return
        for group, values in (("train", r.train), ("valid", r.valid), ("router", r.router)):
            for key, value in values.items():
                self.writer.add_scalar(f"{group}/{key}", value, r.epoch)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def training_ends(epoch: int, best_epoch: int, config: Config) -> bool:
    """Whether `fit` stops after `epoch` (1-based; 0 before the first): all epochs are done, or
    `patience` epochs passed without a better validation score."""
    patience = config.train.patience
    return epoch >= config.train.epochs or (patience > 0 and epoch - best_epoch >= patience)


def fit(
    config: Config,
    dataset: Dataset,
    *,
    out: str | Path | None = None,
    on_epoch: Callable[[EpochRecord, Trainer], bool | None] | None = None,
    state: dict[str, Any] | None = None,
    score_test: bool = True,
    log: Callable[[str], None] | None = print,
) -> FitResult:
    """Train to `config.train.epochs` with early stopping; restore the best epoch; test once."""
    out = Path(out) if out is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        cfg.write(config, out / "config.yaml")
    trainer = Trainer(config, dataset)
    if state is not None:
        trainer.load_state_dict(state)
    board = _Board(out)
    try:
        while not training_ends(trainer.epoch, trainer.best_epoch, config):
            start = time.perf_counter()
            losses = trainer.train_epoch()
            trainer.epoch += 1
            ev = trainer.evaluate("valid")
            value = ev.metrics[trainer.metric]
            if not math.isfinite(value):  # never a best epoch: the run would end scored +-inf
                raise NonFiniteLoss(
                    f"non-finite validation {trainer.metric} ({value}) at epoch {trainer.epoch}"
                )
            improved = trainer.better(value)
            if improved:
                trainer.best_score, trainer.best_epoch = value, trainer.epoch
                trainer.best_state = {
                    k: v.detach().clone() for k, v in trainer.model.state_dict().items()
                }
            record = EpochRecord(
                epoch=trainer.epoch,
                train=losses,
                valid=ev.metrics,
                router=ev.router,
                score=value,
                best_score=trainer.best_score,
                best_epoch=trainer.best_epoch,
                seconds=time.perf_counter() - start,
            )
            trainer.history.append(record)
            board.log(record)
            if log is not None:
                log(_format_epoch(record, config.train.epochs, trainer.metric, improved))
            if on_epoch is not None and on_epoch(record, trainer):
                break
    finally:
        board.close()
    trainer.restore_best()
    best = trainer.history[trainer.best_epoch - 1] if trainer.best_epoch else trainer.history[-1]
    test = trainer.evaluate("test").metrics if score_test else None
    result = FitResult(
        best_epoch=trainer.best_epoch,
        valid=best.valid,
        test=test,
        history=trainer.history,
        config=config,
        trainer=trainer,
    )
    if out is not None:
        model = dev.to_cpu(trainer.model.state_dict())  # loads on a CPU machine too
        torch.save({"model": model, "config": config.to_dict()}, out / "best.pt")
        (out / "results.json").write_text(json.dumps(result_json(result), indent=2))
    return result


def result_json(result: FitResult) -> dict[str, Any]:
    """What `--json` prints: dataset, seed, the validation fold (None: the dataset's own
    split), best epoch, validation and test metrics."""
    data = result.config.data
    return {
        "dataset": data.dataset,
        "seed": result.config.train.seed,
        "fold": {"fold": data.fold, "of": data.folds} if data.folds else None,
        "best_epoch": result.best_epoch,
        "valid": result.valid,
        "test": result.test,
    }


def main(argv: list[str] | None = None) -> int:
    from atsuko.cli import ArgumentParser, positive_int, seed

    parser = ArgumentParser(
        prog="python -m atsuko.train",
        description="Train and evaluate one Atsuko configuration: epochs selected on the "
        "validation split, the test split scored once at the end.",
    )
    parser.add_argument("--dataset", choices=cfg.DATASETS, help="dataset (default: the config's)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--synthetic", action="store_true", help="use the generated stand-in")
    source.add_argument("--data", metavar="PATH", help="feature file or MIntRec folder")
    parser.add_argument("--config", metavar="YAML", help="a config file (e.g. best_config.yaml)")
    parser.add_argument(
        "--set", metavar="KEY=VALUE", action="append", default=[], help="override a config key"
    )
    parser.add_argument("--epochs", type=positive_int, help="maximum epochs")
    parser.add_argument("--seed", type=seed, help="seed for python, numpy and torch (0..2**32-1)")
    parser.add_argument(
        "--out", metavar="DIR", help="write config.yaml, results.json, best.pt, tb/"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args(argv)

    pinned = cfg.parse_set(args.set)
    overrides = {**pinned, **cfg.source_overrides(args.synthetic, args.data)}
    if args.epochs is not None:
        overrides["train.epochs"] = args.epochs
    if args.seed is not None:
        overrides["train.seed"] = args.seed
    config = cfg.resolve(args.config, overrides, dataset=args.dataset)
    given = {"epochs": args.epochs, "seed": args.seed, "dataset": args.dataset, "path": args.data}
    flags = {k: f"--{'data' if k == 'path' else k}" for k, v in given.items() if v is not None}
    cfg.check_pins(config, pinned, flags)
    log = (lambda s: print(s, file=sys.stderr)) if args.json else print
    dataset = with_fold(config.data, load_for_run(config, log=log))
    cut = f" (train and valid: fold {config.data.fold} of {config.data.folds})"
    log(
        f"{dataset.spec.title} from {dataset.source}: "
        + ", ".join(f"{k} {len(s)}" for k, s in dataset.splits.items())
        + (cut if dataset.fold else "")
    )
    try:
        result = fit(config, dataset, out=args.out, log=log)
    except NonFiniteLoss as exc:
        print(f"error: training diverged: {exc}; try a lower train.lr", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result_json(result)))
    else:
        metric, _ = select_spec(config, dataset)
        print(f"best epoch {result.best_epoch}: valid {metric} {result.valid[metric]:.4f}")
        print("test " + "  ".join(f"{k} {v:.4f}" for k, v in (result.test or {}).items()))
    return 0


if __name__ == "__main__":
    from atsuko.cli import run_cli

    run_cli(main)

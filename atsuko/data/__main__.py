"""`python -m atsuko.data {check,synth,convert}`: inspect, generate and convert feature files.

  check PATH [--dataset NAME]       validate a file or MIntRec folder and print a summary
  synth --dataset NAME --out DIR    write a synthetic stand-in in the real format
        [--scale F] [--seed N] [--aligned | --unaligned]
  convert PATH OUT.npz [--dataset NAME]   write a pickle-free copy (loads without running code)

Bad input ends with `error: ...` and exit status 2.
Tested in `tests/atsuko/data/test_data_cli.py`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from atsuko.cli import ArgumentParser, positive_float, run_cli, seed
from atsuko.data import npz
from atsuko.data.load import load
from atsuko.data.registry import dataset_names, get_spec
from atsuko.data.summary import describe
from atsuko.data.synth_write import synthesize
from atsuko.errors import DataError


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m atsuko.data", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    names = dataset_names()

    check = commands.add_parser("check", help="validate a feature file and print a summary")
    check.add_argument("path", metavar="PATH", help="MMSA pickle, .npz, or MIntRec folder")
    check.add_argument("--dataset", choices=names, help="default: inferred from the file")

    synth = commands.add_parser("synth", help="write a synthetic dataset in the real format")
    synth.add_argument("--dataset", choices=names, required=True)
    synth.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    synth.add_argument(
        "--scale", type=positive_float, default=1.0, help="fraction of the real row count"
    )
    synth.add_argument("--seed", type=seed, default=0)
    variant = synth.add_mutually_exclusive_group()
    variant.add_argument("--aligned", dest="aligned", action="store_true", default=None)
    variant.add_argument("--unaligned", dest="aligned", action="store_false")

    convert = commands.add_parser("convert", help="write a pickle-free .npz copy")
    convert.add_argument("path", metavar="PATH", help="MMSA pickle or MIntRec folder")
    convert.add_argument("out", metavar="OUT.npz")
    convert.add_argument("--dataset", choices=names, help="default: inferred from the file")
    return parser


def _load_quietly(path: str, name: str | None):
    """Load; the loader's warnings show up in the summary's notes instead of as warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(path, name)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except OSError as exc:  # unwritable --out, a full disk, ...: the user's to fix
        raise DataError(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None


def _run(args: argparse.Namespace) -> int:
    if args.command == "check":
        print(describe(_load_quietly(args.path, args.dataset)))
    elif args.command == "synth":
        spec = get_spec(args.dataset)
        if args.aligned and "aligned" not in spec.variants:
            raise DataError(f"--aligned: {spec.name} comes unaligned only")
        aligned = args.aligned if args.aligned is not None else "aligned" in spec.variants
        path = synthesize(spec, args.out, scale=args.scale, seed=args.seed, aligned=aligned)
        print(path)
    else:
        out = Path(args.out)
        if out.suffix != ".npz":
            raise DataError(f"{out}: the output of convert must end in .npz")
        dataset = _load_quietly(args.path, args.dataset)
        for note in dataset.notes:
            print(f"note: {note}", file=sys.stderr)
        print(npz.write(dataset, out))
    return 0


if __name__ == "__main__":
    run_cli(main)

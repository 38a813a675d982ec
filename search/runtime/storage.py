"""Where a search keeps its outputs: a local or shared folder, or an object-store URI.

`--out` (and `--resume`) take either. Ray Tune writes trial folders and checkpoints straight
to that location (its `storage_path`), so any node can resume any trial. The driver's own
files (`study.db` is SQLite, which needs a local filesystem; `trials.csv`, `summary.json`,
`best_config.yaml`, `search.json`, the report) live in a local working folder: for a folder
`--out` that is the folder itself; for a URI (`s3://BUCKET/PREFIX`, `gs://BUCKET/PREFIX`,
`file:///ABS/PATH`, anything `pyarrow.fs.FileSystem.from_uri` opens) it is a folder derived
from the URI under the system temp dir (or `$ATSUKO_SEARCH_CACHE`), copied to the URI with
`upload` and back with `download` (`--resume URI`). Credentials come from the environment the
way pyarrow finds them (AWS/GCP variables, config files, instance or workload identity).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyarrow.fs as pafs

from atsuko.config import user_temp_dir
from atsuko.errors import ConfigError
from search import layout

CACHE_ENV = "ATSUKO_SEARCH_CACHE"  # where URIs' local working folders go
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
PARTIAL = (".tmp", "-journal", "-wal", "-shm")  # files being written: never copied
PROBE_TIMEOUT_S = 60.0  # GCS retries for 15 minutes by default: answer sooner
EXPECTED = (
    "expected a local or shared folder, or a URI that pyarrow opens (s3://BUCKET/PREFIX, "
    "gs://BUCKET/PREFIX, file:///ABS/PATH) with credentials in the environment"
)


def is_uri(text: str | os.PathLike) -> bool:
    return bool(SCHEME.match(str(text)))


def cache_root() -> Path:
    """The parent of URIs' local working folders: `$ATSUKO_SEARCH_CACHE` or a per-user temp dir."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser().resolve()
    return user_temp_dir("search")


def working_dir(uri: str) -> Path:
    """The local working folder of `uri`: the same on every run (and every node) for one URI."""
    tail = urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", tail)[:40] or "root"
    return cache_root() / f"{slug}-{hashlib.sha256(uri.encode()).hexdigest()[:12]}"


@functools.lru_cache(maxsize=8)
def _open(uri: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem for `uri` and the path on it; one look proves access works."""
    fs, path = pafs.FileSystem.from_uri(uri)
    _probe(fs, path)
    return fs, path.rstrip("/") or path


def _probe(fs: pafs.FileSystem, path: str) -> None:
    """One look at `path`: raises without credentials, for a bucket we cannot see, or when no
    answer comes within PROBE_TIMEOUT_S (the look goes on in a daemon thread, abandoned)."""
    outcome: list[BaseException | None] = []

    def look() -> None:
        try:
            fs.get_file_info(path)
            outcome.append(None)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            outcome.append(exc)

    thread = threading.Thread(target=look, name="storage-probe", daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S)
    if not outcome:
        raise TimeoutError(
            f"no answer within {PROBE_TIMEOUT_S:g} s: no network, no credentials, or a wrong "
            "endpoint"
        )
    if outcome[0] is not None:
        raise outcome[0]


class Storage:
    """`--out` resolved: `local_dir` holds the driver's files; `uri` (None for a folder) is
    where Tune writes and where `upload` copies them."""

    def __init__(self, out: str | os.PathLike, flag: str = "--out"):
        text = str(out)
        self.flag = flag
        self.uri: str | None = None
        self.fs: pafs.FileSystem | None = None
        self.fs_path = ""
        if not is_uri(text):
            self.local_dir = Path(text).resolve()
            return
        self.uri = text.rstrip("/") if urlsplit(text).path.strip("/") else text
        try:
            self.fs, self.fs_path = _open(self.uri)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, ...
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"{flag} {self.uri}: cannot open this storage location ({reason}); {EXPECTED}"
            ) from None
        self.local_dir = working_dir(self.uri)

    def fetch(self) -> Storage:
        """Copy a URI's driver files into the local working folder (a folder needs nothing);
        an unreadable URI is the user's error, named with the flag. Returns self."""
        if self.remote:
            try:
                self.download()
            except OSError as exc:
                raise ConfigError(f"{self.flag} {self.uri}: cannot read it ({exc})") from None
        return self

    def __getstate__(self) -> dict:  # pickled with Tune's callbacks: re-open where unpickled
        return {"out": self.location, "flag": self.flag}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["out"], state["flag"])

    @property
    def remote(self) -> bool:
        return self.uri is not None

    @property
    def location(self) -> str:
        """What to tell the user and Tune: the URI, or the absolute folder."""
        return self.uri or str(self.local_dir)

    def join(self, *parts: str) -> str:
        """`location/part/...` (a URI's query string, e.g. `?region=...`, stays at the end)."""
        if not self.remote:
            return str(self.local_dir.joinpath(*parts))
        u = urlsplit(self.uri)
        path = "/".join([u.path.rstrip("/"), *parts])
        return urlunsplit((u.scheme, u.netloc, path, u.query, u.fragment))

    def _info(self, name: str) -> pafs.FileInfo:
        return self.fs.get_file_info(f"{self.fs_path}/{name}" if name else self.fs_path)

    def has_file(self, name: str) -> bool:
        if not self.remote:
            return (self.local_dir / name).exists()
        return self._info(name).type == pafs.FileType.File

    def has_folder(self, name: str) -> bool:
        if not self.remote:
            return (self.local_dir / name).is_dir()
        return self._info(name).type == pafs.FileType.Directory

    def is_new(self) -> bool:
        """Whether the location does not exist yet or is an empty folder."""
        if not self.remote:
            out = self.local_dir
            return not out.exists() or (out.is_dir() and not any(out.iterdir()))
        info = self._info("")
        if info.type == pafs.FileType.NotFound:
            return True
        if info.type != pafs.FileType.Directory:
            return False
        return not self.fs.get_file_info(pafs.FileSelector(self.fs_path, allow_not_found=True))

    def reset_working_dir(self) -> None:
        """Empty a URI's local working folder (left from an earlier search of the same URI)."""
        if self.remote:
            shutil.rmtree(self.local_dir, ignore_errors=True)
            self.local_dir.mkdir(parents=True, exist_ok=True)

    def upload(self, skip: tuple[str, ...] = (layout.TUNE_DIR,)) -> int:
        """Copy the driver's files from `local_dir` to the URI; returns how many were copied.

        Folders named in `skip` (Tune's own, written straight to the URI) are left alone.
        Raises OSError when the URI cannot be written.
        """
        if not self.remote or not self.local_dir.is_dir():
            return 0
        local = pafs.LocalFileSystem()
        copied, made = 0, set()
        for path in sorted(self.local_dir.rglob("*")):
            rel = path.relative_to(self.local_dir)
            if not path.is_file() or rel.parts[0] in skip or path.name.endswith(PARTIAL):
                continue
            target = f"{self.fs_path}/{rel.as_posix()}"
            parent = target.rsplit("/", 1)[0]
            if parent not in made:
                self.fs.create_dir(parent, recursive=True)
                made.add(parent)
            pafs.copy_files(
                str(path), target, source_filesystem=local, destination_filesystem=self.fs
            )
            copied += 1
        return copied

    def download(self, skip: tuple[str, ...] = (layout.TUNE_DIR,)) -> int:
        """Replace `local_dir` with the URI's driver files (all but `skip`); returns the count."""
        if not self.remote:
            return 0
        self.reset_working_dir()
        local = pafs.LocalFileSystem()
        copied = 0
        pending = [self.fs_path]
        while pending:
            folder = pending.pop()
            for item in self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
                rel = item.path[len(self.fs_path) :].strip("/")
                if not rel or rel.split("/")[0] in skip or rel.endswith(PARTIAL):
                    continue
                if item.type == pafs.FileType.Directory:
                    pending.append(item.path)
                elif item.type == pafs.FileType.File:
                    target = self.local_dir / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    pafs.copy_files(
                        item.path,
                        str(target),
                        source_filesystem=self.fs,
                        destination_filesystem=local,
                    )
                    copied += 1
        return copied

    def prune_checkpoints(self, folder: str, keep: str | None) -> int:
        """On a URI: delete `folder/*/checkpoint_*` except under trial folder `keep` (as
        `export.prune_checkpoints` does for a local folder). Returns how many were deleted."""
        if not self.remote:
            raise ValueError("prune_checkpoints is for URIs; use export.prune_checkpoints")
        removed = 0
        select = pafs.FileSelector(f"{self.fs_path}/{folder}", allow_not_found=True)
        try:
            for trial in self.fs.get_file_info(select):
                if trial.type != pafs.FileType.Directory or trial.base_name == keep:
                    continue
                for item in self.fs.get_file_info(pafs.FileSelector(trial.path)):
                    if item.type == pafs.FileType.Directory and item.base_name.startswith(
                        "checkpoint_"
                    ):
                        self.fs.delete_dir(item.path)
                        removed += 1
        except OSError:
            pass  # a cleanup: the outputs themselves are already written
        return removed

"""Tune's storage on a local or shared folder, where every file lands whole or not at all.

Tune copies its snapshot (the trial list, the search generator's and the searcher's state) and
the trials' checkpoints into storage file by file, writing each in place. A driver killed in
the middle of a copy leaves a truncated file that `--resume` cannot read, with no older copy
to fall back on. Object stores (s3://, gs://) commit an upload whole; a folder does not, so a
folder is opened through `WholeFiles`: each file is written beside its place under a hidden
`.tmp` name and moved over it when complete (a move within a folder is atomic).
Tested in `tests/search/runtime/test_whole_files.py`.
"""

from __future__ import annotations

import io
import os
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from search.runtime.storage import is_uri


class _MovedWhenClosed(io.RawIOBase):
    """A binary file written under a temporary name and moved to `path` when closed."""

    def __init__(self, path: str):
        super().__init__()
        folder, name = os.path.split(path)
        self.path, self.part = path, os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
        self.file = open(self.part, "wb")  # noqa: SIM115 - closed in close()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self.file.write(data)

    def flush(self) -> None:
        if not self.file.closed:  # pyarrow flushes again after closing
            self.file.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.file.close()
        os.replace(self.part, self.path)
        super().close()


class WholeFiles(pafs.FileSystemHandler):
    """The local filesystem, except that a file being written keeps its old content (or stays
    absent) until the writer closes it."""

    def __init__(self) -> None:
        self.local = pafs.LocalFileSystem()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WholeFiles)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __reduce__(self) -> tuple[type, tuple]:
        return WholeFiles, ()  # trial workers get it with Tune's storage context

    def get_type_name(self) -> str:
        return "local-whole-files"

    def normalize_path(self, path: str) -> str:
        return self.local.normalize_path(path)

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return self.local.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self.local.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.local.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("refusing to delete the contents of the filesystem's root")

    def delete_file(self, path: str) -> None:
        self.local.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self.local.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        with self.local.open_input_stream(src) as source:
            with self.open_output_stream(dest, None) as target:
                while chunk := source.read(1 << 20):
                    target.write(chunk)

    def open_input_stream(self, path: str) -> pa.NativeFile:
        return self.local.open_input_stream(path)

    def open_input_file(self, path: str) -> pa.NativeFile:
        return self.local.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any) -> pa.NativeFile:
        return pa.PythonFile(_MovedWhenClosed(path), mode="w")

    def open_append_stream(self, path: str, metadata: Any) -> pa.NativeFile:
        return self.local.open_append_stream(path)


def tune_storage(storage_path: str) -> dict[str, Any]:
    """Tune's storage arguments for `storage_path` (a folder or a URI): a folder (or file://)
    through `WholeFiles`, an object store as Tune opens it."""
    fs, path = pafs.FileSystem.from_uri(storage_path) if is_uri(storage_path) else (None, None)
    if fs is not None and not isinstance(fs, pafs.LocalFileSystem):
        return {"storage_path": storage_path}
    local = path if path is not None else os.path.abspath(os.path.expanduser(storage_path))
    return {"storage_path": local, "storage_filesystem": pafs.PyFileSystem(WholeFiles())}

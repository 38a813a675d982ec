"""`search.runtime.whole_files`: a file written into Tune's storage folder lands whole or not at
all, even when the writer is killed mid-write; folders copy through it as Tune uploads them."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import pyarrow.fs as pafs

from search.runtime.whole_files import WholeFiles, tune_storage


def _fs() -> pafs.FileSystem:
    return pafs.PyFileSystem(WholeFiles())


def test_a_file_being_written_keeps_its_old_content_until_closed(tmp_path):
    target = tmp_path / "experiment_state-1.json"
    target.write_text('{"old": true}')
    stream = _fs().open_output_stream(str(target))
    stream.write(b'{"new": ')
    assert target.read_text() == '{"old": true}'  # Tune's restore would read this one
    stream.write(b"true}")
    stream.close()
    assert target.read_text() == '{"new": true}'
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary left


def test_a_writer_killed_mid_write_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / "searcher-state-1.pkl"
    target.write_bytes(b"whole")
    script = textwrap.dedent(
        f"""
        import os, pyarrow.fs as pafs
        from search.runtime.whole_files import WholeFiles
        stream = pafs.PyFileSystem(WholeFiles()).open_output_stream({str(target)!r})
        stream.write(b"half of a new ")
        stream.flush()
        os._exit(9)  # as SIGKILL: nothing closes the stream
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    assert target.read_bytes() == b"whole"
    (partial,) = [p for p in tmp_path.iterdir() if p != target]
    assert partial.name.startswith(".") and partial.name.endswith(".tmp")  # never a snapshot


def test_folders_copy_through_it_as_tune_uploads_them(tmp_path):
    source = tmp_path / "staging"
    (source / "trial_1").mkdir(parents=True)
    (source / "experiment_state-1.json").write_text("{}")
    (source / "trial_1" / "params.json").write_bytes(b"x" * (3 << 20))  # several chunks
    pafs.copy_files(str(source), str(tmp_path / "store"), destination_filesystem=_fs())
    assert (tmp_path / "store" / "experiment_state-1.json").read_text() == "{}"
    assert (tmp_path / "store" / "trial_1" / "params.json").stat().st_size == 3 << 20
    fs = _fs()
    fs.copy_file(str(tmp_path / "store/trial_1/params.json"), str(tmp_path / "copy"))
    assert (tmp_path / "copy").stat().st_size == 3 << 20


def test_it_travels_to_trial_workers_pickled():
    fs = pickle.loads(pickle.dumps(_fs()))
    assert fs.type_name == "py::local-whole-files" and fs.equals(_fs())


def test_folders_and_file_uris_go_through_it_object_stores_do_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    local = tune_storage("out")
    assert local["storage_path"] == str(tmp_path / "out")
    assert local["storage_filesystem"].type_name == "py::local-whole-files"
    uri = tune_storage(f"file://{tmp_path}/out")
    assert uri["storage_path"] == f"{tmp_path}/out" and "storage_filesystem" in uri
    assert tune_storage("mock:///bucket/out") == {"storage_path": "mock:///bucket/out"}

"""`search.provenance`: data file hashes and library versions."""

from __future__ import annotations

import hashlib

from search.provenance import sha256_file, versions


def test_sha256_of_a_file_and_none_for_a_folder(tmp_path):
    f = tmp_path / "data.pkl"
    f.write_bytes(b"x" * (3 << 20))  # several read chunks
    assert sha256_file(f) == hashlib.sha256(f.read_bytes()).hexdigest()
    assert sha256_file(tmp_path) is None and sha256_file(tmp_path / "missing") is None


def test_versions_of_the_installed_packages_only():
    found = versions(("torch", "no-such-package-here"))
    assert set(found) == {"torch"} and found["torch"]

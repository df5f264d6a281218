"""A weights file's digest is computed once per version of the file: the study page names it
on every view."""

import hashlib
import os

from hype.features import file_sha256


def test_a_files_digest_is_kept_until_the_file_changes(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"first weights")
    first = file_sha256(path)
    assert first == file_sha256(path) == hashlib.sha256(b"first weights").hexdigest()
    path.write_bytes(b"other weights, longer")
    os.utime(path, ns=(1, 1))
    assert file_sha256(path) == hashlib.sha256(b"other weights, longer").hexdigest()

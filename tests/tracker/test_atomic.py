import pytest

from tracker.atomic import atomic_write


def test_replaces_the_file_only_after_a_complete_write(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")
    with atomic_write(p) as f:
        f.write(b"new")
        assert p.read_bytes() == b"old"  # not replaced while writing
    assert p.read_bytes() == b"new"
    assert not (tmp_path / "f.bin.tmp").exists()


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")
    with pytest.raises(OSError):
        with atomic_write(p) as f:
            f.write(b"partial")
            raise OSError(28, "No space left on device")
    assert p.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [p]

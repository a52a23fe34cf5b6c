"""The one atomic writer (extspec.io.atomic)."""

import os
import stat

import pytest

from extspec.io.atomic import atomic_path, atomic_paths, temp_path, write_atomic


def test_write_atomic_bytes_and_text(tmp_path):
    out = write_atomic(tmp_path / "sub" / "a.txt", "héllo")
    assert out.read_bytes() == "héllo".encode()
    write_atomic(out, b"\x00\x01")
    assert out.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.txt"]


def test_exception_leaves_old_file_and_no_temporary(tmp_path):
    out = tmp_path / "x.dat"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(out) as tmp:
            tmp.write_bytes(b"half-writ")
            raise RuntimeError("boom")
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.dat"]


def test_unwritten_temporary_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not written"):
        with atomic_path(tmp_path / "y.dat"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_temp_names_unique_and_hidden_in_same_directory(tmp_path):
    names = {temp_path(tmp_path / "f.h5") for _ in range(1000)}
    assert len(names) == 1000
    assert all(p.parent == tmp_path and p.name.startswith(".f.h5.") for p in names)


def test_several_files_renamed_together_in_order(tmp_path):
    paths = [tmp_path / n for n in ("a", "b", "c")]
    with pytest.raises(ValueError):
        with atomic_paths(paths) as temps:
            temps[0].write_bytes(b"1")
            temps[1].write_bytes(b"2")
            raise ValueError
    assert list(tmp_path.iterdir()) == []
    with atomic_paths(paths) as temps:
        for t, d in zip(temps, (b"1", b"2", b"3")):
            t.write_bytes(d)
    assert [p.read_bytes() for p in paths] == [b"1", b"2", b"3"]
    mt = [os.stat(p).st_mtime_ns for p in paths]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"] and mt == sorted(mt)


def test_library_writing_to_a_path(tmp_path):
    import h5py

    out = tmp_path / "c.h5"
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as f:
            f["x"] = [1, 2, 3]
    with h5py.File(out) as f:
        assert list(f["x"][:]) == [1, 2, 3]

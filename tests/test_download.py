"""extspec.io.download and the `download` rule, against a local HTTP server on 127.0.0.1 only."""

import functools
import hashlib
import http.server
import shutil
import socket
import sys
import tarfile
import threading
from pathlib import Path

import pytest
import yaml

from extspec.io.download import DownloadError, download_datastore, is_datastore

sys.path.insert(0, str(Path(__file__).parent))
from test_workflow import SNAKEFILE, job_counts, snakemake, write_config  # noqa: E402


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A small release tarball like Zenodo's: hess_dl3_dr1/{obs,hdu}-index.fits.gz + data/."""
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings

    top = tmp_path_factory.mktemp("release")
    src = SourceModel(83.63, 22.01, frame="icrs", spectrum="power_law", params={"index": 2.5, "amplitude": 3e-11})
    store = simulate_datastore(top / "hess_dl3_dr1", wobble_pointings(83.63, 22.01, 2, 0.5), src, livetime=300.0)
    (store / "README.txt").write_text("terms of use\n")
    www = top / "www"
    www.mkdir()
    tarball = www / "hess_dl3_dr1.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(store, arcname="hess_dl3_dr1")
    (www / "not-a-store.tar.gz").write_bytes(b"")
    with tarfile.open(www / "not-a-store.tar.gz", "w:gz") as tar:
        tar.add(store / "README.txt", arcname="something/README.txt")
    return {"www": www, "tarball": tarball, "sha256": hashlib.sha256(tarball.read_bytes()).hexdigest()}


@pytest.fixture(scope="module")
def server(release):
    """http.server on 127.0.0.1 (ephemeral port) serving the release folder."""
    handler = functools.partial(QuietHandler, directory=str(release["www"]))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket closes


def leftovers(parent: Path):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_download_verify_install(tmp_path, server, release):
    dest = tmp_path / "stores" / "hess-dl3-dr1"
    lines = []
    out = download_datastore(f"{server}/hess_dl3_dr1.tar.gz", dest, sha256=release["sha256"], log=lines.append)
    assert out["status"] == "installed" and out["sha256"] == release["sha256"]
    assert is_datastore(dest) and (dest / "README.txt").is_file()
    assert any("checksum verified" in ln for ln in lines)
    assert leftovers(dest.parent) == []
    from extspec.io.datastore import open_datastore

    assert sorted(open_datastore(dest).obs_ids.tolist()) == [1, 2]
    # a second call leaves the store alone
    assert download_datastore(f"{server}/hess_dl3_dr1.tar.gz", dest, log=None)["status"] == "present"


def test_checksum_mismatch_installs_nothing(tmp_path, server):
    dest = tmp_path / "hess-dl3-dr1"
    with pytest.raises(DownloadError, match="checksum mismatch") as exc:
        download_datastore(f"{server}/hess_dl3_dr1.tar.gz", dest, sha256="0" * 64, log=None)
    assert "\n" not in str(exc.value)
    assert not dest.exists() and leftovers(tmp_path) == []


def test_unreachable_url_clear_message(tmp_path):
    dest = tmp_path / "hess-dl3-dr1"
    url = f"http://127.0.0.1:{closed_port()}/hess_dl3_dr1.tar.gz"
    with pytest.raises(DownloadError) as exc:
        download_datastore(url, dest, timeout=5, log=None)
    msg = str(exc.value)
    assert "\n" not in msg and url in msg and "offline" in msg and "1421099" in msg
    assert not dest.exists() and leftovers(tmp_path) == []


def test_http_404(tmp_path, server):
    with pytest.raises(DownloadError, match="HTTP error 404"):
        download_datastore(f"{server}/missing.tar.gz", tmp_path / "s", log=None)
    assert not (tmp_path / "s").exists()


def test_archive_without_store(tmp_path, server):
    with pytest.raises(DownloadError, match="no DL3 data store"):
        download_datastore(f"{server}/not-a-store.tar.gz", tmp_path / "s", log=None)
    assert not (tmp_path / "s").exists() and leftovers(tmp_path) == []


def test_destination_occupied(tmp_path, server):
    dest = tmp_path / "s"
    dest.mkdir()
    (dest / "something").write_text("x")
    with pytest.raises(DownloadError, match="exists and is not a data store"):
        download_datastore(f"{server}/hess_dl3_dr1.tar.gz", dest, log=None)
    assert (dest / "something").is_file()


def test_file_url(tmp_path, release):
    dest = tmp_path / "s"
    download_datastore(release["tarball"].as_uri(), dest, sha256=release["sha256"], log=None)
    assert is_datastore(dest)


def test_workflow_missing_store_then_download_rule(tmp_path, server, release):
    store = tmp_path / "data" / "hess-dl3-dr1"
    cfg = {
        "name": "dl",
        "datastore": str(store),
        "obs_ids": [1, 2],
        "on_region": "icrs;circle(83.63,22.01,0.2)",
        "geom": {"width": [2.0, 2.0], "frame": "icrs"},
        "download": {"url": f"{server}/hess_dl3_dr1.tar.gz", "sha256": release["sha256"]},
    }
    cf = write_config(tmp_path, **cfg)
    # no store: one line saying where it looked and how to get the data; no job
    res = snakemake(tmp_path, cf, "-n", check=False)
    assert res.returncode != 0
    assert f"no DL3 data store found (looked in: {store})" in res.stdout
    assert "1421099" in res.stdout and "snakemake download" in res.stdout
    # the download rule fetches, verifies and installs it
    res = snakemake(tmp_path, cf, "download", "--cores", "1")
    assert is_datastore(store)
    log = (tmp_path / "results" / "logs" / "download.log").read_text()
    assert "checksum verified" in log and release["sha256"] in log
    assert job_counts(snakemake(tmp_path, cf, "-n").stdout)["reduce"] == 2
    receipt = yaml.safe_load((tmp_path / "results" / "download" / "hess-dl3-dr1.json").read_text())
    assert receipt["status"] == "installed" and receipt["sha256"] == release["sha256"]
    assert receipt["dest"] == str(store)
    assert job_counts(snakemake(tmp_path, cf, "download", "-n").stdout) == {}
    # a changed script never deletes the store: the rule's output is the receipt, and the
    # rerun finds the store present
    (tmp_path / "results" / "download" / "hess-dl3-dr1.json").unlink()
    snakemake(tmp_path, cf, "download", "--cores", "1")
    assert is_datastore(store) and "already present" in (tmp_path / "results" / "logs" / "download.log").read_text()
    # a receipt whose store is gone does not stop a new download
    shutil.rmtree(store)
    assert job_counts(snakemake(tmp_path, cf, "download", "-n").stdout) == {"download": 1}
    # offline (a closed port on 127.0.0.1): a clear failure, nothing half-written
    cfg2 = dict(cfg, datastore=str(tmp_path / "other"),
                download={"url": f"http://127.0.0.1:{closed_port()}/x.tar.gz", "timeout": 5})
    res = snakemake(tmp_path, write_config(tmp_path, "offline.yaml", **cfg2), "download", "--cores", "1", check=False)
    assert res.returncode != 0
    log = (tmp_path / "results" / "logs" / "download.log").read_text()
    assert "cannot download" in log and "offline" in log and "Traceback" not in log
    assert not (tmp_path / "other").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".other")] == []

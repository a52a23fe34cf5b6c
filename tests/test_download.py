"""extspec.io.download and the `download` rule, against a local HTTP server on 127.0.0.1 only."""

import functools
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
import yaml

from extspec.io.download import (
    DR1_MANIFEST,
    RECEIPT_NAME,
    DownloadError,
    download_datastore,
    is_datastore,
    read_manifest,
    verify_manifest,
)

sys.path.insert(0, str(Path(__file__).parent))
from test_workflow import DR1, REPO, job_counts, snakemake, subprocess_path, write_config  # noqa: E402


def write_manifest(store: Path, path: Path) -> Path:
    """A sha256sum-format manifest of every file of ``store`` (like the committed DR1 one)."""
    lines = [f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.relative_to(store).as_posix()}"
             for f in sorted(store.rglob("*")) if f.is_file()]
    path.write_text("\n".join(lines) + "\n")
    return path


def tarball(store: Path, path: Path, corrupt: str | None = None) -> Path:
    """``path``: a .tar.gz of ``store`` as ``hess_dl3_dr1/``; ``corrupt``: one file (relative
    path) whose first bytes are flipped in the archive, the store itself left intact."""
    with tarfile.open(path, "w:gz") as tar:
        for f in sorted(store.rglob("*")):
            rel = f.relative_to(store).as_posix()
            info = tar.gettarinfo(f, arcname=f"hess_dl3_dr1/{rel}")
            if f.is_file():
                data = bytearray(f.read_bytes())
                if rel == corrupt:
                    data[100:108] = bytes(b ^ 0xFF for b in data[100:108])
                tar.addfile(info, io.BytesIO(bytes(data)))
            else:
                tar.addfile(info)
    return path


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """Small releases like Zenodo's (hess_dl3_dr1/{obs,hdu}-index.fits.gz + data/ + README.txt),
    each with its own manifest: two Crab-like runs (obs 1, 2), the same with one run
    corrupted in the tarball, and two runs on RX J1713 numbered like the seed runs (20326,
    20327) for the fresh-clone run of the default config."""
    from extspec.simulate import SourceModel, simulate_datastore, wobble_pointings
    from extspec.sky import transform_point

    top = tmp_path_factory.mktemp("release")
    www = top / "www"
    www.mkdir()
    src = SourceModel(83.63, 22.01, frame="icrs", spectrum="power_law", params={"index": 2.5, "amplitude": 3e-11})
    store = simulate_datastore(top / "crab", wobble_pointings(83.63, 22.01, 2, 0.5), src, livetime=300.0)
    (store / "README.txt").write_text("terms of use\n")
    tarball(store, www / "hess_dl3_dr1.tar.gz")
    tarball(store, www / "corrupt.tar.gz", corrupt="data/obs_000002.fits.gz")
    with tarfile.open(www / "not-a-store.tar.gz", "w:gz") as tar:
        tar.add(store / "README.txt", arcname="something/README.txt")
    ra, dec = transform_point(347.3, -0.5, "galactic", "icrs")
    rxj = SourceModel(347.3, -0.5, frame="galactic", spectrum="power_law", params={"index": 2.3, "amplitude": 2e-11})
    rxj_store = simulate_datastore(top / "rxj", wobble_pointings(ra, dec, 2, 0.7), rxj, livetime=600.0,
                                   obs_id_start=20326)
    (rxj_store / "README.txt").write_text("terms of use\n")
    tarball(rxj_store, www / "rxj.tar.gz")
    return {
        "www": www,
        "tarball": www / "hess_dl3_dr1.tar.gz",
        "sha256": hashlib.sha256((www / "hess_dl3_dr1.tar.gz").read_bytes()).hexdigest(),
        "manifest": write_manifest(store, top / "crab.sha256"),
        "rxj_manifest": write_manifest(rxj_store, top / "rxj.sha256"),
    }


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
    out = download_datastore(f"{server}/hess_dl3_dr1.tar.gz", dest, sha256=release["sha256"], log=lines.append,
                             manifest=release["manifest"], receipt=True)
    assert out["status"] == "installed" and out["sha256"] == release["sha256"] and out["files_verified"] == 5
    assert is_datastore(dest) and (dest / "README.txt").is_file()
    assert any("checksum verified" in ln for ln in lines)
    assert any(f"verified 5 files against {release['manifest']}" in ln for ln in lines)
    assert leftovers(dest.parent) == [] and not (dest.parent / "release.tar.gz").exists()
    receipt = json.loads((dest / RECEIPT_NAME).read_text())
    assert receipt == out
    from extspec.io.datastore import open_datastore

    assert sorted(open_datastore(dest).obs_ids.tolist()) == [1, 2]
    # a second call leaves the store alone
    assert download_datastore(f"{server}/hess_dl3_dr1.tar.gz", dest, log=None)["status"] == "present"


def test_checksum_mismatch_installs_nothing(tmp_path, server, release):
    dest = tmp_path / "hess-dl3-dr1"
    with pytest.raises(DownloadError, match="checksum mismatch") as exc:
        download_datastore(f"{server}/hess_dl3_dr1.tar.gz", dest, sha256="0" * 64, log=None,
                           manifest=release["manifest"])
    assert "\n" not in str(exc.value)
    assert not dest.exists() and leftovers(tmp_path) == []


def test_corrupt_file_refused_by_manifest(tmp_path, server, release):
    """The tarball itself is fine (no sha256 pinned); one run inside it is not."""
    dest = tmp_path / "hess-dl3-dr1"
    dest.mkdir()  # as Snakemake leaves it for the receipt: removed again, nothing installed
    with pytest.raises(DownloadError) as exc:
        download_datastore(f"{server}/corrupt.tar.gz", dest, log=None, manifest=release["manifest"], receipt=True)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"refused the release from {server}/corrupt.tar.gz: ")
    assert "data/obs_000002.fits.gz differs from the release" in msg and "nothing was installed" in msg
    assert not dest.exists() and leftovers(tmp_path) == []
    # a file the manifest lists but the archive lacks is named too
    manifest = tmp_path / "more.sha256"
    manifest.write_text(release["manifest"].read_text() + f"{'0' * 64}  data/obs_000003.fits.gz\n")
    with pytest.raises(DownloadError, match="data/obs_000003.fits.gz is missing from the downloaded release"):
        download_datastore(f"{server}/hess_dl3_dr1.tar.gz", dest, log=None, manifest=manifest)
    assert not dest.exists()


def test_manifest_format(tmp_path):
    bad = tmp_path / "bad.sha256"
    bad.write_text("abc  README.txt\n")
    with pytest.raises(DownloadError, match=r"bad.sha256 line 1: expected '<sha256>  <relative path>'"):
        read_manifest(bad)
    bad.write_text(f"{'a' * 64}  ../escape\n")
    with pytest.raises(DownloadError, match="line 1"):
        read_manifest(bad)
    with pytest.raises(DownloadError, match="cannot read it"):
        read_manifest(tmp_path / "missing.sha256")


def test_dr1_manifest():
    """The committed manifest: README.txt, the two index files and the 105 runs of DR1."""
    entries = read_manifest()
    names = [n for n, _ in entries]
    assert names[:3] == ["README.txt", "obs-index.fits.gz", "hdu-index.fits.gz"]
    assert len(names) == 108 and len(set(names)) == 108
    assert sum(n.startswith("data/hess_dl3_dr1_obs_id_") for n in names) == 105
    assert DR1_MANIFEST.is_file()
    if (DR1 / "hdu-index.fits.gz").is_file():
        assert verify_manifest(DR1) == 108


def test_unreachable_url_clear_message(tmp_path):
    dest = tmp_path / "hess-dl3-dr1"
    url = f"http://127.0.0.1:{closed_port()}/hess_dl3_dr1.tar.gz"
    with pytest.raises(DownloadError) as exc:
        download_datastore(url, dest, timeout=5, log=None)
    msg = str(exc.value)
    assert "\n" not in msg and url in msg and "offline" in msg and "1421099" in msg and "by hand" in msg
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
    download_datastore(release["tarball"].as_uri(), dest, sha256=release["sha256"], log=None,
                       manifest=release["manifest"])
    assert is_datastore(dest)


# ----------------------------------------------------------------------------- workflow --

CRAB = {"on_region": "icrs;circle(83.63,22.01,0.2)", "geom": {"width": [2.0, 2.0], "frame": "icrs"}}


def workdir(tmp_path) -> Path:
    """A working directory whose ../shared does not exist (so no store is found there)."""
    wd = tmp_path / "wd"
    wd.mkdir()
    return wd


def extspec_lines(output: str) -> list[str]:
    """extspec's own lines (a WorkflowError from an input function comes indented)."""
    return [ln.strip() for ln in output.splitlines() if ln.strip().startswith("extspec: ")]


def test_workflow_download_rule(tmp_path, server, release):
    """`snakemake download` with an explicit datastore (the user asks for it by name)."""
    wd = workdir(tmp_path)
    store = tmp_path / "data" / "hess-dl3-dr1"
    cfg = {"name": "dl", "datastore": str(store), "obs_ids": [1, 2], **CRAB,
           "download": {"url": f"{server}/hess_dl3_dr1.tar.gz", "sha256": release["sha256"],
                        "manifest": str(release["manifest"])}}
    cf = write_config(wd, **cfg)
    res = snakemake(wd, cf, "download", "--cores", "1")
    assert is_datastore(store)
    log = (wd / "results" / "logs" / "download.log").read_text()
    assert "checksum verified" in log and release["sha256"] in log and "verified 5 files" in log
    assert f"extspec: installed the data store at {store}" in res.stdout  # also on the terminal
    receipt = json.loads((store / RECEIPT_NAME).read_text())
    assert receipt["status"] == "installed" and receipt["sha256"] == release["sha256"]
    assert receipt["dest"] == str(store)
    assert job_counts(snakemake(wd, cf, "-n").stdout)["reduce"] == 2
    assert job_counts(snakemake(wd, cf, "download", "-n").stdout) == {}
    # a store that extspec did not fetch (no receipt) is left alone: nothing to do
    (store / RECEIPT_NAME).unlink()
    assert job_counts(snakemake(wd, cf, "download", "-n").stdout) == {}
    # the receipt lives in the store: a store that is gone is fetched again
    shutil.rmtree(store)
    assert job_counts(snakemake(wd, cf, "download", "-n").stdout) == {"fetch_datastore": 1, "download": 1}
    # an explicit target other than the analysis does not need the store (no argv sniffing)
    assert job_counts(snakemake(wd, cf, "-n", str(store / RECEIPT_NAME)).stdout) == {"fetch_datastore": 1}
    # offline (a closed port on 127.0.0.1): a clear failure, nothing half-written
    cfg2 = dict(cfg, datastore=str(tmp_path / "other"),
                download={"url": f"http://127.0.0.1:{closed_port()}/x.tar.gz", "timeout": 5})
    res = snakemake(wd, write_config(wd, "offline.yaml", **cfg2), "download", "--cores", "1", check=False)
    assert res.returncode != 0
    log = (wd / "results" / "logs" / "download.log").read_text()
    assert "cannot download" in log and "offline" in log and "by hand" in log and "Traceback" not in log
    assert not (tmp_path / "other").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".other")] == []


def test_explicit_missing_datastore_is_never_downloaded_to(tmp_path, server, release):
    wd = workdir(tmp_path)
    mine = tmp_path / "my-store"
    cfg = {"name": "x", "datastore": str(mine), "obs_ids": [1, 2], **CRAB,
           "download": {"url": f"{server}/hess_dl3_dr1.tar.gz", "manifest": str(release["manifest"])}}
    for args in (["-n"], ["--cores", "1"]):
        res = snakemake(wd, write_config(wd, **cfg), *args, check=False)
        assert res.returncode != 0
        lines = extspec_lines(res.stdout)
        assert len(lines) == 1 and f"no DL3 data store found (looked in: {mine})" in lines[0], res.stdout
        assert "never fetched into automatically" in lines[0]
        assert "Traceback (most recent call last)" not in res.stdout
    assert not mine.exists() and not (tmp_path / "shared").exists()
    assert not (wd / "results").exists()


def test_auto_false_stops_with_the_hand_download_line(tmp_path, server, release):
    wd = workdir(tmp_path)
    cfg = {"name": "x", "obs_ids": [1, 2], **CRAB,
           "download": {"url": f"{server}/hess_dl3_dr1.tar.gz", "manifest": str(release["manifest"]), "auto": False}}
    res = snakemake(wd, write_config(wd, **cfg), "--cores", "1", check=False)
    assert res.returncode != 0
    lines = extspec_lines(res.stdout)
    assert len(lines) == 1, res.stdout
    assert "no DL3 data store found" in lines[0] and "download.auto is false" in lines[0]
    assert "by hand" in lines[0] and "1421099" in lines[0] and "snakemake download --cores 1" in lines[0]
    assert not (tmp_path / "shared").exists() and not (wd / "results").exists()


def test_auto_fetch_corrupt_release_refused(tmp_path, server, release):
    wd = workdir(tmp_path)
    cfg = {"name": "x", "obs_ids": [1, 2], **CRAB,
           "download": {"url": f"{server}/corrupt.tar.gz", "manifest": str(release["manifest"])}}
    res = snakemake(wd, write_config(wd, **cfg), "--cores", "1", check=False)
    assert res.returncode != 0
    assert "it will be fetched first" in res.stdout
    assert "data/obs_000002.fits.gz differs from the release" in res.stdout, res.stdout[-3000:]
    assert "Traceback" not in res.stdout
    dest = wd / "data" / "hess-dl3-dr1"
    assert not dest.exists() and (not dest.parent.exists() or leftovers(dest.parent) == [])
    assert not (tmp_path / "shared").exists()
    assert not (wd / "results" / "x").exists()  # no analysis job ran


def test_auto_fetch_offline(tmp_path):
    wd = workdir(tmp_path)
    url = f"http://127.0.0.1:{closed_port()}/hess_dl3_dr1.tar.gz"
    cfg = {"name": "x", "obs_ids": [1, 2], **CRAB, "download": {"url": url, "timeout": 5}}
    res = snakemake(wd, write_config(wd, **cfg), "--cores", "1", check=False)
    assert res.returncode != 0
    err = [ln for ln in res.stdout.splitlines() if f"cannot download {url}" in ln]
    assert err and "offline" in err[0] and "by hand" in err[0], res.stdout[-3000:]
    assert not (wd / "data" / "hess-dl3-dr1").exists() and not (tmp_path / "shared").exists()


def readme_quick_start() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [ln.split("#")[0].strip() for ln in block.strip().splitlines()]


def test_fresh_clone_two_readme_lines(tmp_path, server, release):
    """A clone with no ../shared and no $GAMMAPY_DATA: the README's run line fetches, verifies
    and analyses in one invocation (the default config, pointed at the loopback server)."""
    assert readme_quick_start() == ['python -m pip install -e ".[test]" && snakemake --cores 8', "pytest"]
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("Snakefile", "workflow", "config", "profiles"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, clone / name)
    cfg_file = clone / "config" / "config.yaml"
    cfg = yaml.safe_load(cfg_file.read_text())
    # the test release holds two runs, 20326 and 20327: one by id, the other by the cone,
    # which can only be selected once the store's index is there (after the checkpoint)
    cfg["obs_ids"] = [20326]
    cfg["obs_cone"] = {"radius": 2.0}
    cfg["download"].update(url=f"{server}/rxj.tar.gz", manifest=str(release["rxj_manifest"]))
    cfg_file.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "GAMMAPY_DATA"}
    if subprocess_path():
        env["PATH"] = subprocess_path()
    dest = clone / "data" / "hess-dl3-dr1"  # the user's own folder, never ../shared

    def run(*args):  # the README's command (2 cores, as the machine has)
        cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
        return subprocess.run(cmd, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=600)

    res = run("-n")
    assert res.returncode == 0, res.stdout[-3000:]
    assert f"it will be fetched first (download.auto): {server}/rxj.tar.gz -> {dest}" in res.stdout
    assert job_counts(res.stdout) == {"fetch_datastore": 1, "all": 1} and not dest.exists()
    res = run()
    assert res.returncode == 0, res.stdout[-4000:]
    assert f"extspec: downloading {server}/rxj.tar.gz" in res.stdout
    assert f"extspec: verified 5 files against {release['rxj_manifest']}" in res.stdout
    assert f"extspec: installed the data store at {dest}" in res.stdout
    assert is_datastore(dest) and json.loads((dest / RECEIPT_NAME).read_text())["files_verified"] == 5
    result = yaml.safe_load((clone / "results" / "rxj1713" / "fit" / "result.yaml").read_text())
    assert [int(o) for o in result["obs_ids"]] == [20326, 20327]
    index = result["model"]["parameters"]["index"]
    assert abs(index["value"] - 2.3) < 4 * index["error"] and 0 < index["error"] < 0.3
    for f in ("stacked/counts.fits", "fit/flux_points.ecsv", "cumulative.ecsv"):
        assert (clone / "results" / "rxj1713" / f).is_file()
    # the next run finds the store where it was put: nothing to do, nothing fetched
    res = run("-n")
    assert job_counts(res.stdout) == {} and "fetched" not in res.stdout

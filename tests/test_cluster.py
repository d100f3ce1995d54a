"""Analysing a case on a local Ray (127.0.0.1, 2 CPUs): same results as a local run, and the faults.

One Ray for the whole session (`ray_local`); every test makes its own case and tiny model. The
attacks: kill an actor for good (ray.kill) and SIGKILL another's process mid-run; SIGKILL the
driver mid-run and resume; a node whose model file differs; evidence that differs on the shared
folder; Ray not installed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from declip_desktop.cases import Case
from declip_desktop.cluster.connect import ClusterError, ClusterSession, parse_address
from declip_desktop.cluster.driver import ClusterAnalysis, ClusterOptions, run_on_cluster
from declip_desktop.cluster.worker import ModelRefused, materialize_model
from tests.cases_util import noise_image
from tests.factories import install_tiny_model

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the local Ray fixture scans /proc")

#: Sizes of the 40 test images: the Dolos size, odd and thin shapes, tiny ones.
SIZES = [(256, 256), (41, 29), (7, 300), (300, 7), (64, 48), (1, 1), (33, 33), (120, 90)]


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ppid(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
    except (OSError, IndexError):
        return ""


def ray_pids(marker: str) -> set[str]:
    """Processes whose command line names `marker` (Ray's temp dir), and all their descendants
    (workers rename themselves "ray::IDLE", so they are found through their parents)."""
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    found = {p for p in pids if marker in _cmdline(p)}
    parents = {p: _ppid(p) for p in pids}
    grew = True
    while grew:
        new = {p for p, pp in parents.items() if pp in found and p not in found}
        found |= new
        grew = bool(new)
    return found


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory):
    """A local Ray for the session; at the end, every process it started must be gone."""
    home = tmp_path_factory.mktemp("ray_workers_home")
    saved = os.environ.get("DECLIP_HOME")
    os.environ["DECLIP_HOME"] = str(home)  # the workers inherit this: their caches stay in the test area
    try:
        session = ClusterSession("local", num_cpus=2, object_store_bytes=256 * 2**20).open()
    finally:
        if saved is None:
            os.environ.pop("DECLIP_HOME", None)
        else:
            os.environ["DECLIP_HOME"] = saved
    temp_dir = session.temp_dir
    yield session
    started = ray_pids(temp_dir)
    session.close()
    deadline = time.monotonic() + 15
    while (left := {p for p in started if Path(f"/proc/{p}").exists() and _cmdline(p)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:  # only processes this fixture's Ray started, by pid
        os.kill(int(pid), signal.SIGKILL)
    assert not left, f"Ray left processes behind: {[_cmdline(p)[:80] for p in left]}"
    assert not Path(temp_dir).exists()


@pytest.fixture(scope="session")
def _tiny_files(tmp_path_factory):
    """The tiny model, built once (building it costs seconds on a loaded machine)."""
    home = tmp_path_factory.mktemp("tiny_model_home")
    saved = os.environ.get("DECLIP_HOME")
    os.environ["DECLIP_HOME"] = str(home)
    try:
        card = install_tiny_model("tiny")
    finally:
        if saved is None:
            os.environ.pop("DECLIP_HOME", None)
        else:
            os.environ["DECLIP_HOME"] = saved
    return card, home / "models"


@pytest.fixture
def tiny(_tiny_files, isolated_home):
    """The tiny model installed in this test's DECLIP_HOME; its card."""
    card, models = _tiny_files
    (isolated_home / "models").mkdir(parents=True, exist_ok=True)
    for f in models.glob("tiny.*"):
        shutil.copy(f, isolated_home / "models" / f.name)
    return card


def _make_case(root: Path, n: int = 40, seed: int = 0) -> Case:
    case = Case.create(root / "case", number="2026-0021", title="cluster", analyst="tester")
    src = root / "src"
    for i in range(n):
        noise_image(src / f"img{i:02d}.png", SIZES[i % len(SIZES)], seed=seed * 1000 + i)
    report = case.import_paths([src])
    assert len(report.imported) == n, report.rejected
    return case


def _results_once_each(case: Case, sha: str) -> dict[str, np.ndarray]:
    """{evidence sha256: map}; fails unless every evidence has exactly one result from `sha`."""
    maps = {}
    for ev in case.evidence_list():
        ok = [a for a in case.analyses(ev.id) if a.ok and a.model_sha256 == sha]
        assert len(ok) == 1, f"evidence {ev.id} has {len(ok)} results"
        assert ev.status == "done"
        maps[ev.sha256] = case.load_map(ok[0])
    return maps


def test_addresses_are_checked():
    assert parse_address("LOCAL") == "local" and parse_address(None) == "auto"
    assert parse_address("ray://10.0.0.5:10001") == "ray://10.0.0.5:10001"
    assert parse_address("10.0.0.5:6379") == "10.0.0.5:6379"
    for bad in ("ray://nohost", "http://10.0.0.5:8265", "10.0.0.5", "local host"):
        with pytest.raises(ClusterError, match="address"):
            parse_address(bad)


def test_forty_items_stored_once_with_the_maps_of_a_local_run(ray_local, tmp_path, tiny):
    from declip_desktop.analysis import run_queue
    from declip_desktop.modelstore.loading import load_localizer

    card = tiny
    local_case = _make_case(tmp_path / "local")
    run_queue(local_case, load_localizer("tiny", device="cpu", batch_size=4, threads=1))
    expected = _results_once_each(local_case, card.sha256)

    case = _make_case(tmp_path / "cluster")
    events = []
    summary = run_on_cluster(case, "tiny", ray_local, ClusterOptions(actors=2, batch_size=4, start_with=2),
                             on_progress=events.append)
    assert (summary.done, summary.failed, summary.remaining, summary.duplicates_skipped) == (40, 0, 0, 0)
    got = _results_once_each(case, card.sha256)
    assert got.keys() == expected.keys()
    for sha, m in got.items():
        assert m.shape == expected[sha].shape
        assert np.abs(m - expected[sha]).max() <= 1 / 65535  # the same 16-bit levels (±1 for float order)
    for ev in case.evidence_list():
        local_ev = next(e for e in local_case.evidence_list() if e.sha256 == ev.sha256)
        assert ev.score == pytest.approx(local_ev.score, abs=1e-6)
    # The audit trail says which node and device made each result, and brackets the run.
    stored = [e for e in case.audit_entries() if e.action == "analysis.stored"]
    assert len(stored) == 40
    for entry in stored:
        assert entry.details["device"] == "cpu"
        assert entry.details["parameters"]["model_card"]["sha256"] == card.sha256  # what reports show
        assert entry.details["parameters"]["cluster"]["node_ip"] == "127.0.0.1"
        assert len(entry.details["parameters"]["cluster"]["node_id"]) >= 32
    actions = [e.action for e in case.audit_entries()]
    assert actions.count("analysis.cluster_started") == 1 and actions.count("analysis.cluster_finished") == 1
    finished = next(e for e in case.audit_entries() if e.action == "analysis.cluster_finished")
    assert finished.details["nodes"][0]["items"] == 40 and finished.details["nodes"][0]["actors"] == 2
    assert [e.status for e in events].count("done") == 40 and events[-1].status == "finished"
    assert case.verify().ok
    assert case.get_setting("model") == {"name": "tiny", "sha256": card.sha256}  # pinned, as a local run does
    # Nothing left to do: a second run stores nothing.
    again = run_on_cluster(case, "tiny", ray_local, ClusterOptions(actors=1))
    assert (again.total, again.done) == (0, 0)


def test_killed_actors_lose_nothing_and_store_nothing_twice(ray_local, tmp_path, tiny):
    card = tiny
    case = _make_case(tmp_path, seed=1)
    killed: list[str] = []

    def attack(event):
        if event.status != "done":
            return
        w0, w1 = run.workers[0], run.workers[1]
        if event.done == 4 and not killed:  # gone for good: its items must go to the other worker
            ray_local.ray.kill(w0.actor, no_restart=True)
            killed.append("ray.kill")
        elif event.done == 8 and len(killed) == 1:  # its process dies: Ray restarts it and re-runs its tasks
            os.kill(int(w1.info["pid"]), signal.SIGKILL)
            killed.append("SIGKILL")

    run = ClusterAnalysis(case, "tiny", ray_local, ClusterOptions(actors=2, batch_size=2, start_with=2),
                          on_progress=attack)
    summary = run.run()
    assert killed == ["ray.kill", "SIGKILL"]
    assert (summary.done, summary.failed, summary.remaining) == (40, 0, 0), summary.failures
    _results_once_each(case, card.sha256)
    assert summary.actor_deaths >= 1
    assert sum(n.actor_deaths for n in summary.nodes) == summary.actor_deaths
    assert case.verify().ok and case.status_counts()["analysing"] == 0


def test_a_killed_driver_loses_nothing_and_the_next_run_resumes(ray_local, tmp_path, isolated_home, tiny):
    card = tiny
    case = _make_case(tmp_path, seed=2)
    case_dir = str(case.path)
    case.close()
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "DECLIP_HOME": str(isolated_home), "OMP_NUM_THREADS": "1"}
    gcs = ray_local.ray.get_runtime_context().gcs_address
    driver = subprocess.Popen([sys.executable, "-m", "declip_desktop", "case", "analyze", case_dir, "--model", "tiny",
                               "--cluster", gcs, "--actors", "1", "--batch-size", "1"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stored = 0
        deadline = time.monotonic() + 120
        while stored < 3 and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
            with Case.open(case_dir) as peek:
                stored = peek.status_counts()["done"]
        assert driver.poll() is None, f"the driver ended before it was killed: {driver.communicate()}"
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
        driver.communicate()
    with Case.open(case_dir) as after:  # opening re-queues what the killed driver had sent
        assert after.verify().ok
        counts = after.status_counts()
        assert counts["analysing"] == 0 and 3 <= counts["done"] < 40, counts
        done_before = counts["done"]
    # Resume with the command the analyst would type: a private local Ray of its own.
    markers_before = {p for p in os.listdir("/tmp") if p.startswith("declip-ray-")}
    # The same entry point as `python -m declip_desktop`, plus a look at what the driver imported.
    probe = ("import sys; from declip_desktop.cli import main; rc = main(sys.argv[1:]); "
             "print('torch imported:', 'torch' in sys.modules); sys.exit(rc)")
    resumed = subprocess.run([sys.executable, "-c", probe, "case", "analyze", case_dir, "--cluster", "local",
                              "--cpus", "1", "--actors", "1"], env=env, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert "torch imported: False" in resumed.stdout  # the driver stays torch-free: the nodes run the model
    assert f"Analysed {40 - done_before}, failed 0, still queued 0" in resumed.stdout
    assert "node " in resumed.stdout and "stored" in resumed.stdout  # per-node report
    assert {p for p in os.listdir("/tmp") if p.startswith("declip-ray-")} == markers_before  # cleaned up
    deadline = time.monotonic() + 15  # and its processes are gone (the fixture's own Ray aside)
    while (others := ray_pids("/tmp/declip-ray-") - ray_pids(ray_local.temp_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not others, [_cmdline(p)[:80] for p in others]
    with Case.open(case_dir) as final:
        _results_once_each(final, card.sha256)
        assert final.verify().ok
        assert any(e.action == "analysis.interrupted" for e in final.audit_entries())


def test_a_node_with_a_different_model_file_is_refused(ray_local, tmp_path, isolated_home, tiny):
    case = _make_case(tmp_path, n=4, seed=3)
    node_models = tmp_path / "node-models"
    node_models.mkdir()
    good = isolated_home / "models" / "tiny.safetensors"
    shutil.copy(good.with_suffix(".json"), node_models / "tiny.json")
    data = bytearray(good.read_bytes())
    data[-10] ^= 0x01  # one flipped bit in the last tensor: same name, same card, different file
    (node_models / "tiny.safetensors").write_bytes(bytes(data))
    options = ClusterOptions(actors=1, model_from="installed", models_dir=str(node_models),
                             cache_dir=str(tmp_path / "no-cache"))
    with pytest.raises(ClusterError, match=r"no worker accepted the model: node .*hashes to [0-9a-f]{64}, not"):
        run_on_cluster(case, "tiny", ray_local, options)
    assert case.status_counts()["queued"] == 4 and case.analyses() == []
    finished = [e for e in case.audit_entries() if e.action == "analysis.cluster_finished"]
    assert "hashes to" in finished[-1].details["refused"][0]

    # The node gets the right file; the evidence is read from a shared folder where one file lies.
    shutil.copy(good, node_models / "tiny.safetensors")
    shared = tmp_path / "shared-mount"
    shutil.copytree(case.path / "evidence", shared / "evidence")
    liar = case.evidence_list()[1]
    target = shared / case.evidence_file(liar).relative_to(case.path)
    os.chmod(target, 0o644)
    target.write_bytes(target.read_bytes()[:-1] + b"\0")
    options.evidence_from, options.shared_root = "shared", str(shared)
    summary = run_on_cluster(case, "tiny", ray_local, options)
    assert (summary.done, summary.failed) == (3, 1)
    assert summary.failures[0][0] == liar.id and "do not match the import SHA-256" in summary.failures[0][1]
    assert case.latest_analysis(liar.id).parameters["cluster"]["evidence_from"] == "shared"


def test_shipped_weights_are_checked_on_the_node(tmp_path, tiny):
    card = tiny
    from declip_desktop.modelstore.store import ModelStore

    weights = ModelStore().get("tiny").weights_path.read_bytes()
    spec = {"model_sha256": card.sha256, "card": card.to_dict(), "model_from": "ship", "cache_dir": str(tmp_path)}
    with pytest.raises(ModelRefused, match="shipped weights hash to"):
        materialize_model(spec, weights[:-1] + b"x")
    cached = tmp_path / f"{card.sha256}.safetensors"
    cached.write_bytes(b"stale or tampered cache")
    installed = materialize_model(spec, np.frombuffer(weights, np.uint8))  # the bad cached copy is replaced
    assert installed.weights_path == cached and cached.read_bytes() == weights
    with pytest.raises(ModelRefused, match="names SHA-256"):
        materialize_model({**spec, "model_sha256": "0" * 64}, weights)


def test_cluster_info_lists_the_nodes(ray_local):
    gcs = ray_local.ray.get_runtime_context().gcs_address
    out = subprocess.run([sys.executable, "-m", "declip_desktop", "cluster", "info", gcs, "--json"],
                         env={**os.environ, "PYTHONPATH": os.getcwd()}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["cpus"] == 2 and info["gpus"] == 0 and info["nodes"][0]["address"] == "127.0.0.1"


def _listening(pids: set[str]) -> list[str]:
    """Local addresses of the TCP sockets `pids` listen on, as "IP" strings."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A = LISTEN
                continue
            raw = bytes.fromhex(fields[1].split(":")[0])
            words = [raw[i:i + 4][::-1] for i in range(0, len(raw), 4)]  # little-endian 32-bit words
            addr = b"".join(words)
            found.append(".".join(str(b) for b in addr[-4:]) if width == 8 or addr[:12] == bytes(10) + b"\xff\xff"
                         else addr.hex())
    return found


def test_the_local_ray_listens_on_loopback_only(ray_local):
    addresses = _listening(ray_pids(ray_local.temp_dir))
    assert addresses, "found no listening socket of the local Ray (the check would prove nothing)"
    assert set(addresses) == {"127.0.0.1"}, addresses
    assert all(n.address == "127.0.0.1" for n in ray_local.info().nodes)


def test_without_ray_the_cli_says_how_to_install_it(tmp_path, monkeypatch, capsys, tiny):
    from declip_desktop.cli import main

    case = _make_case(tmp_path, n=1)
    case.close()
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    assert main(["case", "analyze", str(case.path), "--model", "tiny", "--cluster", "local"]) == 2
    assert "pip install 'declip-desktop[cluster]'" in capsys.readouterr().err
    assert main(["case", "analyze", str(case.path), "--cluster", "http://x:1"]) == 2
    assert "not a cluster address" in capsys.readouterr().err
    with Case.open(case.path) as again:
        assert again.status_counts()["queued"] == 1


def test_a_cluster_without_this_package_gets_a_clear_error_and_the_queue_is_kept(ray_local, tmp_path, tiny,
                                                                                   monkeypatch):
    """Through Ray Client, a cluster whose nodes lack DeCLIP Desktop fails when the actor class is sent."""
    case = _make_case(tmp_path, n=2, seed=4)

    def cannot_import(*_args, **_kwargs):
        raise ModuleNotFoundError("No module named 'declip_desktop.cluster'")

    monkeypatch.setattr(ray_local.ray, "remote", cannot_import)
    with pytest.raises(ClusterError, match=r"could not create a model actor: ModuleNotFoundError.*Install DeCLIP"):
        run_on_cluster(case, "tiny", ray_local, ClusterOptions(actors=1))
    assert case.status_counts()["queued"] == 2 and case.analyses() == []
    assert case.get_setting("model") is None  # nothing ran: the case is not pinned to the model

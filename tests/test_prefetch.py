"""The analysis pipeline: the next batch is loaded while one runs, in order, bounded, cancellable,
checked against the import hash on the very bytes analysed; and the model's hash thread."""

from __future__ import annotations

import hashlib
import threading
import time

import numpy as np
import pytest

from declip_desktop.analysis import run_queue
from declip_desktop.analysis.prefetch import BatchPrefetcher
from declip_desktop.cases import Case
from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.model_card import ModelError
from declip_desktop.modelstore.weights_digest import WeightsDigest, sha256_mapped
from tests.cases_util import FakeLocalizer, noise_image


@pytest.fixture
def case(tmp_path):
    c = Case.create(tmp_path / "case", number="9", title="Prefetch", analyst="Ana")
    src = tmp_path / "src"
    for i in range(7):  # 7 images, batches of 2: a short last batch
        noise_image(src / f"{i}.png", (40 + i, 30), seed=i)
    c.import_paths([src])
    yield c
    c.close()


class PreparingLocalizer(FakeLocalizer):
    """A stand-in with the Localizer's prepare/predict_prepared pair that records when each
    image is prepared relative to the batches being run."""

    def __init__(self, *, run_delay=0.0, **kw):
        super().__init__(**kw)
        self.run_delay = run_delay
        self.log: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        self.prepared_bytes: list[bytes] = []

    def prepare(self, source, name=None):
        with self.lock:
            self.log.append(("prepare", name))
            self.prepared_bytes.append(source)
        tmp = self._tmp / name
        tmp.write_bytes(source)
        return tmp

    def predict_prepared(self, sources):
        with self.lock:
            self.log.append(("run", [p.name for p in sources]))
        time.sleep(self.run_delay)
        return self.predict(sources)


def _stand_in(tmp_path, **kw):
    loc = PreparingLocalizer(**kw)
    loc._tmp = tmp_path / "decoded"
    loc._tmp.mkdir()
    return loc


def test_batches_run_in_order_and_the_next_is_loaded_while_one_runs(case, tmp_path):
    loc = _stand_in(tmp_path, batch_size=2, run_delay=0.3)
    summary = run_queue(case, loc)
    assert summary.done == 7 and not summary.failed
    runs = [entry for kind, entry in loc.log if kind == "run"]
    names = [case.evidence_file(e).name for e in case.evidence_list()]
    assert [n for batch in runs for n in batch] == names  # stored in evidence order
    assert [len(b) for b in runs] == [2, 2, 2, 1]
    # while batch k ran, batch k+1 was already prepared (the network did not wait for it) ...
    first_run = next(i for i, (kind, _) in enumerate(loc.log) if kind == "run")
    prepared_before = sum(1 for kind, _ in loc.log[:first_run + 1] if kind == "prepare")
    second_run = [i for i, (kind, _) in enumerate(loc.log) if kind == "run"][1]
    assert sum(1 for kind, _ in loc.log[:second_run] if kind == "prepare") >= 4
    # ... and no more than one loaded batch waits beside the one being loaded (memory bound)
    assert prepared_before <= 2 + 2 + 2
    order = [e.id for e in case.evidence_list()]
    assert [a.evidence_id for a in sorted(case.analyses(), key=lambda a: a.id)] == order


def test_what_is_analysed_is_the_bytes_that_were_hash_checked(case, tmp_path):
    loc = _stand_in(tmp_path, batch_size=3)
    run_queue(case, loc)
    hashes = {e.sha256 for e in case.evidence_list()}
    assert {hashlib.sha256(b).hexdigest() for b in loc.prepared_bytes} == hashes


def test_a_file_changed_after_import_is_a_failure_and_never_prepared(case, tmp_path):
    import os

    path = case.evidence_file(3)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-10])
    loc = _stand_in(tmp_path, batch_size=2)
    summary = run_queue(case, loc)
    assert summary.failures == [(3, "the evidence file changed since import (SHA-256 mismatch); not analysed")]
    assert path.name not in [name for kind, name in loc.log if kind == "prepare"]
    assert summary.done == 6


def test_stopping_ends_the_prefetch_thread_and_leaves_the_rest_queued(case, tmp_path):
    loc = _stand_in(tmp_path, batch_size=2, run_delay=0.05)
    events = []
    summary = run_queue(case, loc, on_progress=events.append,
                        should_stop=lambda: sum(e.status == "done" for e in events) >= 2)
    assert summary.stopped and summary.done == 2 and summary.remaining == 5
    assert not [t for t in threading.enumerate() if t.name == "declip-prefetch"]
    prepared = sum(1 for kind, _ in loc.log if kind == "prepare")
    assert prepared <= 2 + 2 + 2  # the running batch, one waiting, one being loaded: never the whole queue
    assert {e.status for e in case.evidence_list() if e.id > 2} == {"queued"}
    (tmp_path / "again").mkdir()
    rest = run_queue(case, _stand_in(tmp_path / "again", batch_size=2))
    assert rest.done == 5 and len(case.analyses()) == 7


def test_prefetcher_close_stops_between_images(case, tmp_path):
    slow = threading.Event()

    class Slow(PreparingLocalizer):
        def prepare(self, source, name=None):
            slow.set()
            time.sleep(0.05)
            return super().prepare(source, name)

    loc = Slow(batch_size=1)
    loc._tmp = tmp_path / "decoded"
    loc._tmp.mkdir()
    batches = [[e] for e in case.evidence_list()]
    with BatchPrefetcher(case, loc, batches, depth=1) as pf:
        first = pf.next()
        assert first[0].evidence.id == 1 and first[0].error is None
        assert slow.wait(5)
    assert sum(1 for kind, _ in loc.log if kind == "prepare") <= 4  # stopped long before 7


def test_a_thread_error_reaches_the_caller(case):
    class Broken(FakeLocalizer):
        def prepare(self, source, name=None):
            raise KeyError("boom")

        def predict_prepared(self, sources):  # pragma: no cover - never reached
            raise AssertionError

    with pytest.raises(KeyError, match="boom"):
        run_queue(case, Broken())
    assert not [t for t in threading.enumerate() if t.name == "declip-prefetch"]


def test_the_real_localizer_gives_the_same_maps_through_the_prefetch(case):
    from declip_desktop.modelstore.loading import load_localizer
    from tests.factories import install_tiny_model

    install_tiny_model(name="tiny-prefetch")
    loc = load_localizer("tiny-prefetch", device="cpu", batch_size=3, threads=1)
    summary = run_queue(case, loc)
    assert summary.done == 7
    direct = loc.predict([case.evidence_file(e) for e in case.evidence_list()])
    for ev, pred in zip(case.evidence_list(), direct):
        stored = case.load_map(case.latest_analysis(ev.id))
        assert stored.shape == pred.prob_map.shape
        assert np.abs(stored - pred.prob_map).max() <= 1 / 65535 + 1e-7


def test_a_tiled_localizer_gets_the_photo_through_the_prefetch(case):
    """The prefetch keeps the decoded photo only for a tiled localizer, and the tiled pair, tile
    progress and extra parameters come out as on the direct path."""
    from declip_desktop.cases.analysis_pairs import tiled_partner
    from declip_desktop.common.tiling_plan import TilingOptions
    from declip_desktop.modelstore.loading import load_localizer
    from tests.factories import install_tiny_model

    install_tiny_model(name="tiny-prefetch-tiled")
    plain = load_localizer("tiny-prefetch-tiled", device="cpu", batch_size=2, threads=1)
    first = case.evidence_file(case.evidence_list()[0])
    assert plain.prepare(first).image is None  # a waiting batch holds only the small tensors
    loc = load_localizer("tiny-prefetch-tiled", device="cpu", batch_size=2, threads=1,
                         tiling=TilingOptions(scales=(1.0, 0.5)))
    assert loc.prepare(first).image.size == (40, 30)
    events = []
    summary = run_queue(case, loc, on_progress=events.append, extra_parameters={"role": "primary"})
    assert summary.done == 7 and summary.failed == 0
    ids = [e.id for e in case.evidence_list()]
    # tile progress during every batch (it names the batch's first item: the runner's granularity)
    assert {e.evidence_id for e in events if e.status == "tiles"} == set(ids[::2])
    direct = loc.predict([case.evidence_file(e) for e in case.evidence_list()])
    for ev, pred in zip(case.evidence_list(), direct):
        squash = case.latest_analysis(ev.id)
        tiled = tiled_partner(case, squash)
        assert squash.parameters["role"] == tiled.parameters["role"] == "primary"
        assert np.abs(case.load_map(tiled) - pred.tiled.prob_map).max() <= 1 / 65535 + 1e-7


def test_weights_digest_matches_and_reports_read_errors(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(np.random.default_rng(0).bytes((3 << 20) + 17))
    with WeightsDigest(path) as d:
        assert d.result() == sha256_file(path)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha256_mapped(empty) == hashlib.sha256(b"").hexdigest()
    with WeightsDigest(tmp_path / "missing") as d, pytest.raises(FileNotFoundError):
        d.result()


def test_a_changed_weights_file_is_reported_as_changed_even_when_it_no_longer_fits(tmp_path):
    from declip_desktop.modelstore.loading import load_network, resolve_model
    from tests.factories import install_tiny_model

    install_tiny_model(name="tiny-tampered")
    installed = resolve_model("tiny-tampered")
    weights = installed.weights_path
    import os

    os.chmod(weights, 0o644)
    data = bytearray(weights.read_bytes())
    data[12:20] = b"garbage!"  # inside the JSON header: the file no longer parses either
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="changed or damaged"):
        load_network(installed)

"""Analyses and the queue runner: results with their provenance, failures, resume, OOM, model switch."""

from __future__ import annotations

import os

import numpy as np
import pytest

from declip_desktop.analysis import run_queue
from declip_desktop.cases import Case, CaseBusyError, CaseError
from declip_desktop.common.version import SOFTWARE_VERSION
from tests.cases_util import FakeLocalizer, noise_image


@pytest.fixture
def case(tmp_path):
    c = Case.create(tmp_path / "case", number="3", title="Runs", analyst="Ana")
    src = tmp_path / "src"
    for i in range(5):
        noise_image(src / f"{i}.png", (40, 30), seed=i)
    c.import_paths([src])
    yield c
    c.close()


def test_store_result_keeps_the_map_and_its_provenance(case):
    prob = np.random.default_rng(1).random((30, 40)).astype(np.float32)
    a = case.store_result(1, model_name="declip-ldm", model_sha256="b" * 64, parameters={"fast": True},
                          score=0.81, prob_map=prob, device="cuda:0", seconds=1.5,
                          started="2026-11-28T10:00:00+01:00", finished="2026-11-28T10:00:02+01:00")
    assert (a.model_name, a.model_sha256, a.parameters, a.score, a.device) == (
        "declip-ldm", "b" * 64, {"fast": True}, 0.81, "cuda:0")
    assert a.software_version == SOFTWARE_VERSION and a.error is None and a.created_by == "Ana"
    assert a.map_file.startswith("results/") and (case.path / a.map_file).is_file()
    np.testing.assert_allclose(case.load_map(a), prob, atol=1 / 65535)
    ev = case.get_evidence(1)
    assert ev.status == "done" and ev.score == 0.81
    logged = case.audit_entries(evidence_ids=[1])[-1]
    assert logged.action == "analysis.stored" and logged.details["map_sha256"] == a.map_sha256
    assert not [p for p in (case.path / ".tmp").iterdir() if p.suffix != ".lock"]


def test_store_result_refuses_a_broken_map(case):
    with pytest.raises(CaseError, match="NaN"):
        case.store_result(1, model_name="m", model_sha256="c" * 64, parameters={}, score=0.1,
                          prob_map=np.full((4, 4), np.nan, np.float32), device="cpu", seconds=0, started="", finished="")
    assert case.get_evidence(1).status == "queued" and case.analyses() == []


def test_run_queue_stores_every_result_with_progress(case):
    events = []
    loc = FakeLocalizer(batch_size=2)
    summary = run_queue(case, loc, on_progress=events.append)
    assert (summary.total, summary.done, summary.failed, summary.remaining) == (5, 5, 0, 0) and summary.ok
    assert loc.calls == 3  # batches of two
    assert all(e.status == "done" for e in case.evidence_list())
    done_events = [e for e in events if e.status == "done"]
    assert [e.done for e in done_events] == [1, 2, 3, 4, 5] and done_events[-1].eta_seconds == 0
    assert events[-1].status == "finished"
    a = case.latest_analysis(3)
    img = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(case.evidence_file(3)).convert("RGB"))
    np.testing.assert_allclose(case.load_map(a), img[:, :, 0] / 255.0, atol=1e-4)
    assert a.model_name == "fake-model" and a.model_sha256 == "f" * 64
    # nothing left to do for this model
    again = run_queue(case, FakeLocalizer())
    assert again.total == 0


def test_per_image_errors_become_failures_and_the_rest_continue(case):
    ev2 = case.get_evidence(2)
    loc = FakeLocalizer(fail_names={ev2.stored_name})
    summary = run_queue(case, loc)
    assert (summary.done, summary.failed) == (4, 1)
    assert summary.failures == [(2, "decoder exploded")]
    failed = case.get_evidence(2)
    assert failed.status == "failed" and failed.error == "decoder exploded"
    assert case.latest_analysis(2).error == "decoder exploded"
    assert case.audit_entries(evidence_ids=[2])[-1].action == "analysis.failed"
    # failures are not retried by the same model until requeued
    assert run_queue(case, FakeLocalizer()).total == 0
    case.requeue([2])
    assert run_queue(case, FakeLocalizer()).done == 1


def test_changed_evidence_is_not_analysed(case):
    path = case.evidence_file(4)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes() + b"tail")
    summary = run_queue(case, FakeLocalizer())
    assert (4, "the evidence file changed since import (SHA-256 mismatch); not analysed") in summary.failures


def test_stop_and_resume(case):
    events = []
    summary = run_queue(case, FakeLocalizer(batch_size=1), on_progress=events.append,
                        should_stop=lambda: sum(e.status == "done" for e in events) >= 2)
    assert summary.stopped and summary.done == 2 and summary.remaining == 3
    loc = FakeLocalizer(batch_size=1)
    rest = run_queue(case, loc)
    assert rest.done == 3 and len(loc.seen) == 3
    assert len(case.analyses()) == 5  # no image analysed twice


def test_interrupted_evidence_goes_back_to_the_queue(case):
    assert case.mark_analysing(1) and not case.mark_analysing(1)
    case.close()
    with Case.open(case.path) as reopened:  # the run that claimed it is gone: requeued on open
        assert reopened.get_evidence(1).status == "queued"
        assert reopened.audit_entries()[-1].action == "analysis.interrupted"


def test_only_one_run_per_case(case):
    lock = case.analysis_lock()
    assert lock.acquire(blocking=False)
    try:
        with pytest.raises(CaseBusyError, match="already running"):
            run_queue(case, FakeLocalizer())
    finally:
        lock.release()


def test_out_of_device_memory_is_reported_and_nothing_is_lost(case):
    events = []
    summary = run_queue(case, FakeLocalizer(batch_size=2, oom_after=1), on_progress=events.append)
    assert summary.out_of_memory and "ran out of memory" in summary.message and "cpu" in summary.message.lower()
    assert summary.done == 2 and events[-1].status == "out_of_memory"
    assert case.status_counts()["queued"] == 3 and case.status_counts()["analysing"] == 0
    assert run_queue(case, FakeLocalizer()).done == 3  # e.g. on the CPU


def test_dequeue_skips_and_a_new_model_reanalyses(case):
    case.dequeue([5])
    first = run_queue(case, FakeLocalizer())
    assert first.done == 4 and case.get_evidence(5).status == "skipped"
    other = FakeLocalizer(name="other", sha="e" * 64)
    assert [e.id for e in case.queued_evidence("e" * 64)] == [1, 2, 3, 4]
    assert run_queue(case, other, evidence_ids=[1, 2]).done == 2
    assert [a.model_name for a in case.analyses(1)] == ["fake-model", "other"]
    assert case.latest_analysis(1).model_sha256 == "e" * 64
    assert [e.action for e in case.audit_entries()].count("analysis.dequeued") == 1


def test_thumbnail_is_made_once(case):
    thumb = case.thumbnail_file(1)
    assert thumb is not None and thumb.is_file()
    assert case.thumbnail_file(1) == thumb
    assert case.verify().ok  # thumbnails are derived data, not unknown files

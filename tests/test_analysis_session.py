"""AnalysisSession: model choice and pin, counts, CPU fallback, cancel, card snapshot per result.

A fake engine (tests.cases_util.FakeLocalizer + a resolver over a dict of cards) keeps these fast;
the real Localizer goes through the same session in tests/test_cases_cli.py and test_gui_app.py.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from declip_desktop.analysis import AnalysisSession, ModelLoadError, ModelPinError, waiting_evidence
from declip_desktop.cases import Case
from declip_desktop.cases.case_settings import pin_model, pinned_model
from declip_desktop.common.errors import DeviceUnavailable
from tests.cases_util import FakeLocalizer, noise_image


class FakeEngine:
    """Installed models by name; `factory` builds FakeLocalizers and records every call."""

    def __init__(self, **models: str):
        self.models = {name: SimpleNamespace(card=SimpleNamespace(name=name, sha256=sha, kind="declip", demo=False,
                                                                  label=""))
                       for name, sha in models.items()}
        self.default = next(iter(models))
        self.built: list[tuple[str, str]] = []
        self.oom_on: set[str] = set()  # devices whose localizers run out of memory at once
        self.missing_devices: set[str] = set()

    def resolve(self, spec):
        name = self.default if spec is None else spec
        if name not in self.models:
            raise LookupError(f"no installed model named {name!r}")
        return self.models[name]

    def factory(self, model, *, device, fast, batch_size, on_status):
        if device in self.missing_devices:
            raise DeviceUnavailable(f"device {device!r} was requested but is not available")
        self.built.append((model.card.name, device))
        loc = FakeLocalizer(name=model.card.name, sha=model.card.sha256, batch_size=batch_size,
                            oom_after=0 if device in self.oom_on else None)
        loc.device = device
        return loc


@pytest.fixture
def case(tmp_path):
    c = Case.create(tmp_path / "case", number="16", title="Session", analyst="Ana")
    for i in range(3):
        noise_image(tmp_path / "src" / f"{i}.png", (40, 30), seed=i)
    c.import_paths([tmp_path / "src"])
    yield c
    c.close()


def session(case, engine, **kw):
    return AnalysisSession(case, localizer_factory=engine.factory, model_resolver=engine.resolve, **kw)


def test_first_run_pins_the_default_model_and_every_result_carries_its_card(case):
    engine = FakeEngine(a="a" * 64, b="b" * 64)
    s = session(case, engine)
    choice = s.choose_model()
    assert (choice.name, choice.source) == ("a", "default") and pinned_model(case) is None  # choosing writes nothing
    summary = s.run()
    assert summary.done == 3 and summary.ok
    assert pinned_model(case).as_setting() == {"name": "a", "sha256": "a" * 64}
    changes = [e for e in case.audit_entries() if e.action == "setting.changed"]
    assert [c.details["new"] for c in changes] == [{"name": "a", "sha256": "a" * 64}]
    for ev in case.evidence_list():
        card = case.latest_analysis(ev.id).parameters["model_card"]
        assert card["name"] == "a" and card["sha256"] == "a" * 64 and card["demo"] is False


def test_a_newer_default_never_replaces_the_pinned_model(case):
    engine = FakeEngine(a="a" * 64, b="b" * 64)
    session(case, engine).run(evidence_ids=[1])
    engine.default = "b"  # a model imported or downloaded later becomes the store's default
    s = session(case, engine)
    assert (s.choose_model().name, s.choose_model().source) == ("a", "case")
    assert s.run().done == 2
    assert {case.latest_analysis(ev.id).model_name for ev in case.evidence_list()} == {"a"}


def test_a_different_file_under_the_pinned_name_is_refused_before_anything_runs(case):
    engine = FakeEngine(a="a" * 64)
    session(case, engine).run(evidence_ids=[1])
    engine.models["a"].card.sha256 = "c" * 64  # reinstalled with --force from another file
    before = len(case.audit_entries())
    with pytest.raises(ModelPinError, match=r"another file \(SHA-256 cccccccccccc…\)"):
        session(case, engine).run()
    assert len(case.audit_entries()) == before and engine.built == [("a", "auto")]
    assert [e.status for e in case.evidence_list()] == ["done", "queued", "queued"]


def test_a_pinned_model_that_is_gone_says_so(case):
    pin_model(case, "vanished", "d" * 64)
    with pytest.raises(ModelPinError, match="vanished .*cannot be found.*--model NAME"):
        session(case, FakeEngine(a="a" * 64)).choose_model()


def test_an_old_pin_by_name_only_gains_the_hash_on_the_next_run(case):
    case.set_setting("model", "a")  # cases made before pins carried the SHA-256
    engine = FakeEngine(a="a" * 64)
    session(case, engine).run()
    assert pinned_model(case).sha256 == "a" * 64


def test_an_explicit_one_off_model_leaves_the_pin_alone(case):
    engine = FakeEngine(a="a" * 64, b="b" * 64)
    session(case, engine).run()
    s = session(case, engine, model="b")
    summary = s.run(evidence_ids=[2], requeue=True, pin=False)
    assert summary.done == 1 and case.latest_analysis(2).model_name == "b"
    assert pinned_model(case).name == "a"


def test_out_of_memory_moves_to_the_cpu_once_and_audits_it(case):
    engine = FakeEngine(a="a" * 64)
    engine.oom_on = {"cuda"}
    notices = []
    summary = session(case, engine, device="cuda").run(on_notice=lambda *n: notices.append(n))
    assert summary.done == 3 and engine.built == [("a", "cuda"), ("a", "cpu")]
    assert {case.latest_analysis(ev.id).device for ev in case.evidence_list()} == {"cpu"}
    assert any(level == "warning" and "CPU" in message for level, message, _ in notices)
    assert [e.object for e in case.audit_entries() if e.action == "analysis.device_fallback"] == ["cuda"]


def test_a_missing_device_is_an_error_unless_the_front_end_asks_for_the_cpu(case):
    engine = FakeEngine(a="a" * 64)
    engine.missing_devices = {"cuda"}
    with pytest.raises(ModelLoadError, match="not available"):
        session(case, engine, device="cuda").run()
    assert case.status_counts()["queued"] == 3
    gui = session(case, engine, device="cuda", fall_back_when_unavailable=True)
    notices = []
    assert gui.run(on_notice=lambda *n: notices.append(n)).done == 3
    gui.run(on_notice=lambda *n: notices.append(n))  # the next run reuses the CPU model, no new warning
    assert engine.built == [("a", "cpu")] and len(notices) == 1


def test_the_count_announced_is_what_runs_and_what_the_gui_sees(case):
    engine = FakeEngine(a="a" * 64, b="b" * 64)
    session(case, engine).run(evidence_ids=[1])
    starts = []
    s = session(case, engine)
    assert [e.id for e in s.waiting()] == [2, 3] == [e.id for e in waiting_evidence(case, "a" * 64)]
    summary = s.run(on_start=starts.append)
    assert starts == [2] and summary.total == 2


def test_cancel_between_images_takes_the_rest_out_of_the_queue(case):
    engine = FakeEngine(a="a" * 64)
    s = session(case, engine, batch_size=1)
    s.pause()
    done = threading.Event()
    result = {}

    def run():
        result["summary"] = s.run(on_progress=lambda e: e.status == "done" and s.pause())
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    s.resume()  # one image, then the progress callback pauses again
    assert not done.wait(0.5)
    s.cancel()
    assert done.wait(10)
    thread.join()
    summary = result["summary"]
    assert summary.cancelled and summary.done == 1
    assert sorted(e.status for e in case.evidence_list()) == ["done", "skipped", "skipped"]


def test_a_localizer_whose_card_is_not_the_loaded_model_stores_nothing(case):
    engine = FakeEngine(a="a" * 64)
    real_factory = engine.factory

    def lying_factory(model, **kw):
        loc = real_factory(model, **kw)
        loc.model_sha256 = "e" * 64  # loads another file than the card it was asked for
        return loc

    s = AnalysisSession(case, localizer_factory=lying_factory, model_resolver=engine.resolve)
    with pytest.raises(ModelLoadError, match="not the chosen"):
        s.run()
    assert case.analyses() == [] and pinned_model(case) is None

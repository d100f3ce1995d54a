"""`declip analyze`: JSON lines, exit codes, maps on disk, on-the-fly import, demo labels."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from declip_desktop.cli import main
from declip_desktop.common.model_card import ModelCard
from declip_desktop.common.probmaps import load_map
from declip_desktop.modelstore.store import ModelStore
from tests.factories import install_tiny_model, make_tiny_vit_checkpoint


def _save(path, h, w, seed=0):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _run(capsys, *argv):
    code = main(["analyze", *map(str, argv)])
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    return code, lines, err


@pytest.fixture
def images(tmp_path):
    a = _save(tmp_path / "in" / "one" / "photo.png", 60, 90, seed=1)
    b = _save(tmp_path / "in" / "two" / "photo.jpg", 70, 50, seed=2)
    bad = tmp_path / "in" / "two" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not a jpeg")
    return tmp_path / "in", a, b, bad


def test_folder_with_a_corrupt_image_and_maps(capsys, images, tmp_path):
    card = install_tiny_model()
    folder, a, b, bad = images
    maps = tmp_path / "maps"
    code, lines, err = _run(capsys, folder, "--maps-dir", maps, "--batch-size", "2", "--threads", "1")
    assert code == 1 and "Traceback" not in err
    by_path = {line["path"]: line for line in lines}
    assert set(by_path) == {str(a), str(b), str(bad)}
    assert "error" in by_path[str(bad)] and "score" not in by_path[str(bad)]
    progress = [line for line in err.splitlines() if line.startswith("[")]  # stderr is not a terminal here
    assert len(progress) == 3 and progress[-1].startswith("[3/3]")
    assert any(line.startswith("[") and "broken.jpg: failed:" in line for line in progress)
    from declip_desktop.modelstore.loading import load_localizer

    direct = load_localizer(card.name, device="cpu", batch_size=1, threads=1)  # the same model, through the API
    for good, (h, w) in ((a, (60, 90)), (b, (70, 50))):
        rec = by_path[str(good)]
        assert "error" not in rec
        assert rec["seconds"] > 0
        assert rec["model_sha256"] == card.sha256 and rec["model"] == card.name
        assert "demo" not in rec
        prob = load_map(rec["map"])
        assert prob.shape == (h, w) and prob.dtype == np.float32
        expected = direct.predict_one(good)
        assert rec["score"] == pytest.approx(expected.score, abs=1e-6)  # printed rounded to 6 digits
        assert np.abs(prob - expected.prob_map).max() < 1e-5
    # Same stem from two folders: two files, neither overwritten.
    assert sorted(p.name for p in maps.iterdir()) == ["photo-2.npy", "photo.npy"]


def test_png16_maps_read_back_close_to_npy(capsys, tmp_path):
    install_tiny_model()
    img = _save(tmp_path / "x.png", 40, 30)
    code, lines, _ = _run(capsys, img, "--maps-dir", tmp_path / "n")
    assert code == 0
    code, lines16, _ = _run(capsys, img, "--maps-dir", tmp_path / "p", "--map-format", "png16")
    assert code == 0
    exact = load_map(lines[0]["map"])
    levels = load_map(lines16[0]["map"])
    assert lines16[0]["map"].endswith(".png") and levels.shape == (40, 30)
    assert np.abs(exact - levels).max() <= 1 / 65535 + 1e-7


def test_missing_file_is_an_error_line(capsys, tmp_path):
    install_tiny_model()
    good = _save(tmp_path / "ok.png", 30, 30)
    code, lines, _ = _run(capsys, good, tmp_path / "nope.png")
    assert code == 1
    assert len(lines) == 2
    errors = [line for line in lines if "error" in line]
    assert len(errors) == 1 and errors[0]["path"].endswith("nope.png") and "not found" in errors[0]["error"]


def test_no_model_is_fatal(capsys, tmp_path, monkeypatch):
    # Hide the bundled starter model: this is a machine with no model at all.
    (tmp_path / "no-bundled").mkdir()
    monkeypatch.setattr("declip_desktop.common.paths.BUNDLED_MODELS_DIR", tmp_path / "no-bundled")
    img = _save(tmp_path / "x.png", 30, 30)
    code, lines, err = _run(capsys, img)
    assert code == 2 and lines == []
    assert err.startswith("error:") and "no model installed" in err


def test_no_images_is_fatal(capsys, tmp_path):
    install_tiny_model()
    (tmp_path / "empty").mkdir()
    code, lines, err = _run(capsys, tmp_path / "empty")
    assert code == 2 and "no images found" in err and lines == []


def test_authors_checkpoint_is_imported_on_the_fly(capsys, tmp_path):
    ckpt = make_tiny_vit_checkpoint(tmp_path / "ViT_layer1_conv-4_lama.pth", seed=4)
    img = _save(tmp_path / "x.png", 30, 40)
    code, lines, _ = _run(capsys, img, "--model", ckpt)
    assert code == 0
    installed = ModelStore(bundled=None).list()  # the user's models, not the bundled starter
    assert len(installed) == 1 and lines[0]["model_sha256"] == installed[0].sha256


def test_demo_model_lines_say_so(capsys, tmp_path):
    card = install_tiny_model()
    store = ModelStore()
    src = store.get(card.name)
    data = card.to_dict()
    data.update(name="demo", demo=True, label="demo model — not for casework")
    shutil.copyfile(src.weights_path, store.root / "demo.safetensors")
    (store.root / "demo.json").write_text(ModelCard.from_dict(data).to_json(), encoding="utf-8")
    img = _save(tmp_path / "x.png", 30, 40)
    code, lines, _ = _run(capsys, img, "--model", "demo", "--fast")
    assert code == 0
    assert lines[0]["demo"] is True and lines[0]["label"] == "demo model — not for casework"

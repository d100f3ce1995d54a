"""Downloads that cannot be redirected, inflated or swapped (issue 14, items 4 and 5), on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json

import pytest

from declip_desktop.cli import main
from declip_desktop.common.model_card import ModelError
from declip_desktop.common.paths import models_dir
from declip_desktop.modelstore import checkpoint_import, download, http_checks, registry
from declip_desktop.modelstore.checkpoint_import import import_checkpoint
from declip_desktop.modelstore.download_errors import DownloadError
from declip_desktop.modelstore.fetch import fetch
from declip_desktop.modelstore.store import ModelStore
from tests import factories
from tests.local_http import LocalServer, no_proxy, server, tiny_registry  # noqa: F401 (fixtures)


def _serve(server, tmp_path, name: str, seed: int = 0) -> str:
    entry = registry.get_checkpoint(name)
    src = factories.make_tiny_vit_checkpoint(tmp_path / f"{name}-{seed}.pth", seed=seed)
    return server.served.add("/mirror/" + entry.mirror_path, src.read_bytes())


def _leftovers() -> list[str]:
    folder = download.downloads_dir()
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


def test_redirect_to_another_scheme_is_not_followed(server, tmp_path):
    server.served.redirects["/a.pth"] = "ftp://127.0.0.1/a.pth"
    with pytest.raises(DownloadError, match="redirected to ftp://127.0.0.1/a.pth") as err:
        fetch(server.url("/a.pth"), tmp_path / "a.pth")
    assert err.value.kind == "redirect"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == []
    server.served.redirects["/b.pth"] = "file:///etc/passwd"
    with pytest.raises(DownloadError, match="redirected to file:///etc/passwd"):
        fetch(server.url("/b.pth"), tmp_path / "b.pth")


def test_https_may_never_be_downgraded_to_http():
    assert http_checks.allowed_redirect_schemes("https://storage.googleapis.com/x") == {"https"}
    assert http_checks.allowed_redirect_schemes("http://mirror.lab/x") == {"http", "https"}
    guard = http_checks.RedirectGuard("https://storage.googleapis.com/x.pth")
    with pytest.raises(DownloadError, match="not an https:// address") as err:
        guard.redirect_request(None, None, 302, "Found", {}, "http://evil.example/x.pth")
    assert err.value.kind == "redirect"


def test_http_mirror_redirect_is_followed_and_the_final_url_recorded(server, tmp_path, tiny_registry):
    entry = registry.get_checkpoint("vit-ldm")
    digest = _serve(server, tmp_path, "vit-ldm")
    data = server.served.files.pop("/mirror/" + entry.mirror_path)
    server.served.add("/real/ldm.pth", data)
    server.served.redirects["/mirror/" + entry.mirror_path] = server.url("/real/ldm.pth")
    result = download.download_model("vit-ldm", importer=import_checkpoint, base_url=server.url("/mirror"))
    recorded = json.loads((models_dir() / "vit-ldm.json").read_text())["download"]
    assert recorded["final_url"] == server.url("/real/ldm.pth")
    assert recorded["url"] == server.url("/mirror/" + "backbone_VIT/ViT_layer20_conv-20_ldm.pth")
    assert result.source_sha256 == digest == recorded["sha256"]


def test_an_endless_body_is_cut_at_the_cap_and_deleted(server, tmp_path):
    server.served.endless.add("/endless.pth")
    with pytest.raises(DownloadError, match="more than") as err:
        fetch(server.url("/endless.pth"), tmp_path / "e.pth", max_bytes=3_000_000)
    assert err.value.kind == "too-large"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == []


def test_registry_size_caps_a_model_download(server, tmp_path, tiny_registry, monkeypatch):
    import dataclasses

    entry = registry.get_checkpoint("vit-lama")
    _serve(server, tmp_path, "vit-lama")
    size = len(server.served.files["/mirror/" + entry.mirror_path])
    assert entry.max_size > entry.approx_size  # a margin above the expected size
    small = dataclasses.replace(entry, approx_size=size // 4)
    monkeypatch.setattr(registry, "SIZE_MARGIN_BYTES", 0)
    monkeypatch.setitem(registry.CHECKPOINTS, "vit-lama", small)
    with pytest.raises(DownloadError, match="announces") as err:  # refused from the Content-Length
        download.download_model("vit-lama", importer=import_checkpoint, base_url=server.url("/mirror"))
    assert err.value.kind == "too-large" and _leftovers() == []
    assert "vit-lama" not in ModelStore(bundled=None)


def test_a_file_of_another_architecture_than_the_registry_is_refused(server, tmp_path):
    _serve(server, tmp_path, "vit-ldm")  # a ViT layer1 conv-4 file where layer20 conv-20 is due
    with pytest.raises(DownloadError, match="layer1 conv-4 network, but ViT-L/14 layer20 conv-20 was expected") as err:
        download.download_model("vit-ldm", importer=import_checkpoint, base_url=server.url("/mirror"))
    assert err.value.kind == "checkpoint"
    assert "vit-ldm" not in ModelStore(bundled=None) and _leftovers() == []


def test_force_builds_beside_and_keeps_the_old_model_when_the_install_fails(server, tmp_path, tiny_registry,
                                                                              monkeypatch):
    _serve(server, tmp_path, "vit-cocosd")
    download.download_model("vit-cocosd", importer=import_checkpoint, base_url=server.url("/mirror"))
    weights, card = models_dir() / "vit-cocosd.safetensors", models_dir() / "vit-cocosd.json"
    before = (hashlib.sha256(weights.read_bytes()).hexdigest(), card.read_text())

    real_write = checkpoint_import.write_safetensors

    def disk_full_halfway(path, tensors, metadata=None):
        assert ".staging" in str(path)  # never written over the installed model
        real_write(path, tensors, metadata)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_import, "write_safetensors", disk_full_halfway)
    with pytest.raises(DownloadError) as err:
        download.download_model("vit-cocosd", importer=import_checkpoint, base_url=server.url("/mirror"), force=True)
    assert err.value.kind == "disk"
    assert (hashlib.sha256(weights.read_bytes()).hexdigest(), card.read_text()) == before
    assert not (models_dir() / ".staging").exists()
    ModelStore(bundled=None).get("vit-cocosd")  # still installed and listed

    monkeypatch.setattr(checkpoint_import, "write_safetensors", real_write)
    again = download.download_model("vit-cocosd", importer=import_checkpoint, base_url=server.url("/mirror"), force=True)
    assert not again.already_installed
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == before[0]  # same source, same weights
    assert json.loads(card.read_text())["download"]["final_url"]
    assert not (models_dir() / ".staging").exists()
    assert dict((n, ok) for n, ok, _ in ModelStore(bundled=None).verify())["vit-cocosd"]


def test_downloads_never_change_the_default_and_the_cli_sets_it(server, tmp_path, tiny_registry, capsys):
    _serve(server, tmp_path, "vit-ldm", seed=1)
    _serve(server, tmp_path, "vit-lama", seed=2)
    assert main(["models", "download", "vit-ldm", "--mirror", server.url("/mirror")]) == 0
    _, err = capsys.readouterr()
    assert "vit-ldm is now the default model (there was none)" in err
    assert main(["models", "download", "vit-lama", "--mirror", server.url("/mirror")]) == 0
    _, err = capsys.readouterr()
    store = ModelStore()
    assert store.default().name == "vit-ldm"
    assert "default model is still vit-ldm" in err and "declip models default vit-lama" in err

    assert main(["models", "default", "vit-lama"]) == 0
    out, _ = capsys.readouterr()
    assert "vit-lama is now the default model" in out
    assert store.default().name == "vit-lama"
    assert main(["models", "default", "--json"]) == 0
    out, _ = capsys.readouterr()
    snap = json.loads(out)
    assert snap["name"] == "vit-lama" and snap["demo"] is False and snap["recorded"] is True
    assert main(["models", "list", "--json"]) == 0
    out, _ = capsys.readouterr()
    assert [r["name"] for r in json.loads(out) if r["default"]] == ["vit-lama"]

    assert main(["models", "default", "no-such-model"]) == 2
    _, err = capsys.readouterr()
    assert "no model named 'no-such-model'" in err
    assert store.default().name == "vit-lama"  # a failed choice changes nothing

    assert main(["models", "remove", "vit-lama"]) == 0
    capsys.readouterr()
    with pytest.raises(ModelError, match="default model 'vit-lama' is not installed any more"):
        store.default()  # never a silent switch to vit-ldm
    (models_dir() / "default.json").write_text("{broken")
    with pytest.raises(ModelError, match="unreadable"):
        store.default()


def test_default_is_not_a_model_name(tmp_path):
    src = factories.make_tiny_vit_checkpoint(tmp_path / "x.pth")
    from declip_desktop.modelstore.checkpoint_import import import_checkpoint

    with pytest.raises(ModelError, match="cannot be a model name"):
        import_checkpoint(src, name="default")

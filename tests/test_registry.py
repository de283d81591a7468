import sys
import textwrap
from pathlib import Path

import pytest
import torch

import models
from models import registry

MODELS_DIR = Path(models.__file__).parent


def test_unknown_model_names_closest_matches():
    with pytest.raises(models.UnknownModelError) as error:
        models.create_model("convlstn")
    message = str(error.value)
    assert "unknown model 'convlstn'" in message
    assert "did you mean 'convlstm'" in message
    assert "known:" in message and "modernn" in message


def test_wildcards_and_all():
    assert models.list_models("predrnn*") == [n for n in models.list_models() if n.startswith("predrnn")]
    assert models.list_models("all") == models.list_models()
    assert models.list_models(["persistence", "convlstm"]) == ["persistence", "convlstm"]
    with pytest.raises(models.UnknownModelError, match="xyz"):
        models.list_models("xyz*")


def test_build_with_overrides():
    small = models.create_model("convlstm", hidden=8, layers=1)
    default = models.create_model("convlstm")
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in default.parameters())


def test_new_model_file_is_picked_up_without_other_edits():
    path = MODELS_DIR / "zz_test_dropin.py"
    path.write_text(textwrap.dedent("""
        from .persistence import Persistence
        from .registry import register_model

        @register_model("zz_dropin", family="test", paper="none")
        def zz_dropin(channels=1, height=64, width=64):
            return Persistence()
    """))
    try:
        registry.refresh()
        assert "zz_dropin" in models.list_models()
        out = models.create_model("zz_dropin")(torch.rand(1, 3, 1, 8, 8), 2, 1)
        assert out.future.shape == (1, 1, 1, 8, 8)
    finally:
        path.unlink()
        registry._REGISTRY.pop("zz_dropin", None)
        sys.modules.pop("models.zz_test_dropin", None)


def test_installed_distribution_adds_models_through_entry_point(tmp_path, monkeypatch):
    (tmp_path / "stbench_plugin_demo.py").write_text(textwrap.dedent("""
        import torch.nn as nn
        from models import register_model
        from models.persistence import Persistence

        @register_model("plugin_demo", family="plugin", paper="a test distribution")
        def plugin_demo(channels=1, height=64, width=64):
            return Persistence()
    """))
    dist_info = tmp_path / "stbench_plugin_demo-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: stbench-plugin-demo\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[stbench.models]\nplugin_demo = stbench_plugin_demo\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        registry.refresh()
        assert "plugin_demo" in models.list_models()
        assert models.get_spec("plugin_demo").family == "plugin"
    finally:
        registry._REGISTRY.pop("plugin_demo", None)
        sys.modules.pop("stbench_plugin_demo", None)


def test_all_unknown_names_are_reported_at_once_with_suggestions():
    with pytest.raises(models.UnknownModelError) as error:
        models.list_models(["convlstn", "persistence", "predrnx", "xyz*"])
    message = str(error.value)
    assert "unknown model 'convlstn'; did you mean 'convlstm'" in message
    assert "unknown model 'predrnx'; did you mean 'predrnn'" in message
    assert "unknown model 'xyz*'; known:" in message
    assert "persistence'" not in message.split("known:")[0]


def test_a_broken_model_file_is_skipped_with_a_warning(tmp_path, monkeypatch):
    (tmp_path / "zz_syntax.py").write_text("def broken(:\n")
    (tmp_path / "zz_import.py").write_text("import no_such_package_here\n")
    (tmp_path / "zz_fine.py").write_text(textwrap.dedent("""
        from models.persistence import Persistence
        from models.registry import register_model

        @register_model("zz_fine", family="test", paper="none")
        def zz_fine(channels=1, height=64, width=64):
            return Persistence()
    """))
    # the discovery path gets a temporary folder: nothing is written into models/
    monkeypatch.setattr(models, "__path__", [*models.__path__, str(tmp_path)])
    try:
        with pytest.warns(RuntimeWarning) as warned:
            registry.refresh()
        messages = sorted(str(w.message) for w in warned)
        assert len(messages) == 2
        assert f"skipping {tmp_path / 'zz_import.py'}" in messages[0]
        assert "ModuleNotFoundError: No module named 'no_such_package_here'" in messages[0]
        assert f"skipping {tmp_path / 'zz_syntax.py'}" in messages[1] and "SyntaxError" in messages[1]
        assert {"zz_fine", "modernn", "convlstm"} <= set(models.list_models())
    finally:
        registry._REGISTRY.pop("zz_fine", None)
        for name in ("zz_syntax", "zz_import", "zz_fine"):
            sys.modules.pop(f"models.{name}", None)


@pytest.mark.parametrize("name", models.list_models())
def test_meta_parameter_count_equals_a_real_build(name):
    from types import SimpleNamespace

    from bench.config import get_preset
    from bench.grid.runner import model_config
    frame = SimpleNamespace(channels=1, height=32, width=32, in_len=4, out_len=4)
    config = model_config(name, get_preset("smoke"), frame, {})
    real = sum(p.numel() for p in models.create_model(name, **config).parameters())
    assert registry.meta_parameter_count(name, **config) == real
    assert models.parameter_count(name, **config) == real


def test_list_models_builds_every_model_on_the_meta_device(monkeypatch):
    from bench.cli.run import list_models_table
    devices = {}
    create = registry.create_model

    def spy(name, **config):
        devices[name] = torch.empty(0).device.type  # the default device inside the build
        return create(name, **config)

    monkeypatch.setattr(registry, "create_model", spy)
    list_models_table("table")
    assert devices and set(devices.values()) == {"meta"}, devices

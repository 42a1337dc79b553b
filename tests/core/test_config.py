"""config.py: one EditorConfig, built once by each surface and passed on whole (issue 18)."""

import dataclasses

import pytest

from lasso_edit.core.config import EditorConfig


def test_a_config_round_trips_as_a_dict_and_refuses_an_unknown_option():
    c = EditorConfig("tiny", device="cpu", lora_scale=0.5, optional=("detector",))
    assert EditorConfig.from_dict(c.to_dict()) == c
    assert EditorConfig.from_dict({**c.to_dict(), "optional": ["detector"]}) == c  # JSON gives a list
    with pytest.raises(TypeError, match="unknown editor options \\['lora_scal'\\]"):
        EditorConfig.from_dict({"preset": "tiny", "lora_scal": 0.5})
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.device = "cuda"  # type: ignore[misc]


def test_from_preset_is_from_config_of_the_fields_and_the_editor_keeps_its_config(tiny_dir):
    from lasso_edit import Editor

    ed = Editor.from_preset("tiny", device="cpu", parser="rules", lora_scale=0.5)
    assert ed.config == EditorConfig("tiny", device="cpu", parser="rules", lora_scale=0.5)
    same = Editor.from_config(ed.config)
    assert (same.models, same.parser_name, same.grounder_name) == (ed.models, ed.parser_name, ed.grounder_name)
    with pytest.raises(TypeError, match="unknown editor options \\['devise'\\]"):
        Editor.from_preset("tiny", devise="cpu")


def test_a_command_s_parameters_become_the_config_by_the_fields_names():
    """The CLI builds its config from its parameters (locals()) by EditorConfig's field names: an
    option added to both reaches the editor with no line in between; the rest are left out."""
    params = {"preset": "tiny", "device": "cpu", "vlm": "tiny:qwen3-vl", "deepcache": 3, "output": "out.png",
              "dry_run": True, "attention_layers": "1,2", "seed": 7}
    c = EditorConfig.from_params(params, paint=False, attention=None)
    assert c == EditorConfig("tiny", device="cpu", vlm="tiny:qwen3-vl", deepcache=3, paint=False)
    every = {f.name: f.default for f in dataclasses.fields(EditorConfig)}
    assert EditorConfig.from_params(every) == EditorConfig()


def test_the_server_builds_its_editor_from_the_config_it_is_given(tiny_dir, tmp_path):
    from lasso_edit.server.app import ServerSettings

    given = EditorConfig("tiny", device="cpu", parser="rules")
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path), editor=given)
    assert settings.editor_config() == given.replace(optional=("detector",))
    legacy = ServerSettings(preset="tiny", data_dir=str(tmp_path), device="cpu", lora_scale=0.3)
    assert legacy.editor_config() == EditorConfig("tiny", device="cpu", lora_scale=0.3, optional=("detector",))


def test_the_ray_runner_ships_the_config_to_its_workers_whole(tmp_path):
    pytest.importorskip("ray")
    from lasso_edit.scale.ray_batch import RayBatchRunner

    config = EditorConfig("tiny", device="cpu", lora_scale=0.25, deepcache=2)
    runner = RayBatchRunner(config, tmp_path / "out", settings={})
    assert EditorConfig.from_dict(runner.editor_options) == config

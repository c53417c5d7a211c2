from pathlib import Path

import pytest
import yaml

from litehrnet.config import ConfigError, SCHEMA, load_config, parse_cli_options


def _write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def test_base_inheritance_and_defaults(tmp_path):
    _write(tmp_path / "base.yaml", {"model": {"variant": "hrnet_w32", "num_keypoints": 16}})
    cfg_path = _write(tmp_path / "child.yaml", {"_base_": "base.yaml", "model": {"num_keypoints": 17}})
    cfg = load_config(cfg_path)
    assert cfg["model"]["variant"] == "hrnet_w32"        # from the base
    assert cfg["model"]["num_keypoints"] == 17           # child wins
    assert cfg["model"]["input_hw"] == SCHEMA["model"]["input_hw"]  # default


def test_unknown_key_lists_valid_ones(tmp_path):
    cfg_path = _write(tmp_path / "bad.yaml", {"model": {"varient": "litehrnet_18"}})
    with pytest.raises(ConfigError) as err:
        load_config(cfg_path)
    msg = str(err.value)
    assert "model.varient" in msg and "variant" in msg and str(cfg_path) in msg


def test_wrong_type_and_shape(tmp_path):
    with pytest.raises(ConfigError, match="num_keypoints"):
        load_config(_write(tmp_path / "a.yaml", {"model": {"num_keypoints": "seventeen"}}))
    with pytest.raises(ConfigError, match="divisible by 32"):
        load_config(_write(tmp_path / "b.yaml", {"model": {"input_hw": [250, 192]}}))


def test_base_cycle_and_missing_file(tmp_path):
    _write(tmp_path / "x.yaml", {"_base_": "y.yaml"})
    _write(tmp_path / "y.yaml", {"_base_": "x.yaml"})
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "x.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_cli_overrides(tmp_path):
    cfg_path = _write(tmp_path / "c.yaml", {})
    cfg = load_config(cfg_path, parse_cli_options(["train.optimizer.lr=0.01", "model.input_hw=[384,288]"]))
    assert cfg["train"]["optimizer"]["lr"] == 0.01
    assert cfg["model"]["input_hw"] == [384, 288]
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(cfg_path, parse_cli_options(["train.lrr=1"]))


def test_exponent_floats_without_a_dot_are_floats(tmp_path):
    """PyYAML (YAML 1.1) reads ``4e-05`` as a string; a learning rate written so must still load."""
    import yaml

    from litehrnet.config import load_config, parse_cli_options

    assert parse_cli_options(["train.optimizer.lr=4e-05", "x=1E3", "y=1e", "z=7"]) == \
        {"train": {"optimizer": {"lr": 4e-05}}, "x": 1000.0, "y": "1e", "z": 7}
    assert yaml.safe_load("4e-05") == "4e-05"  # the plain loader is untouched
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("_base_: " + str(Path(__file__).resolve().parents[2] / "configs/coco/litehrnet_18_coco_256x192.yaml")
                        + "\ntrain:\n  optimizer:\n    lr: 2e-3\n")
    assert load_config(cfg_file, parse_cli_options(["train.epochs=3"]))["train"]["optimizer"]["lr"] == 0.002

"""A run directory made by an older version resumes when only fields added since (at their defaults) differ."""

import json

import pytest
from _run_helpers import small_config

from selfdistill.configio import ConfigError
from selfdistill.pipeline import Run, same_settings


def _age(record: dict, drop_student: str, drop_policy: str) -> dict:
    """The record as an older version wrote it: two fields missing, another fingerprint."""
    old = json.loads(json.dumps(record))
    del old["config"]["distill"]["students"][0][drop_student]
    del old["config"]["policy"][drop_policy]
    old["fingerprint"] = "0123456789abcdef"
    return old


def test_older_record_with_new_fields_at_defaults_resumes(tmp_path):
    cfg = small_config(tmp_path)
    run = Run(cfg)
    meta = run.dir / "run.json"
    record = json.loads(meta.read_text())
    meta.write_text(json.dumps(_age(record, "usage_prompts", "upcycle")))
    Run(cfg)  # no ConfigError
    assert (
        json.loads(meta.read_text())["fingerprint"] == cfg.fingerprint()
    )  # the record is brought up to date


def test_changed_setting_or_removed_field_still_refuses(tmp_path):
    cfg = small_config(tmp_path)
    meta = Run(cfg).dir / "run.json"
    record = _age(json.loads(meta.read_text()), "usage_prompts", "upcycle")
    record["config"]["rl"]["max_steps"] += 1
    meta.write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="different config"):
        Run(cfg)


def test_same_settings_rules():
    default = {"a": 1, "b": {"c": 2}, "l": [{"x": 0, "y": 5}]}
    assert same_settings({"a": 1, "l": [{"x": 3}]}, {"a": 1, "b": {"c": 2}, "l": [{"x": 3, "y": 5}]}, default)
    assert not same_settings({"a": 1}, {"a": 1, "b": {"c": 3}}, default)  # a new field away from its default
    assert not same_settings({"a": 1, "z": 0}, {"a": 1}, default)  # a setting that no longer exists
    assert not same_settings({"l": [{"x": 3}]}, {"l": [{"x": 3, "y": 6}]}, default)
    assert not same_settings({"l": [{"x": 3}]}, {"l": [{"x": 3, "y": 5}, {"x": 1, "y": 5}]}, default)

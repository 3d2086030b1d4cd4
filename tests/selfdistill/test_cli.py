"""The command line: help for every stage, config errors as exit code 2, bad model paths."""

import subprocess
import sys

import pytest

from selfdistill.cli import main
from selfdistill.config import load_config
from selfdistill.configio import ConfigError


@pytest.mark.parametrize("command", ["run", "rl", "collect", "sft", "distill", "eval", "config"])
def test_help_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "config" in capsys.readouterr().out


def test_config_command_prints_resolved_yaml(capsys):
    assert main(["config", "rl.max_steps=3"]) == 0
    assert "max_steps: 3" in capsys.readouterr().out


def test_config_fields_documents_every_key(capsys):
    assert main(["config", "--fields"]) == 0
    out = capsys.readouterr().out
    assert "rl.algorithm" in out and "collect.min_reward" in out
    sources = next(line for line in out.splitlines() if line.startswith("tasks.sources "))
    # a list of sections shows what a config file would write, not every field's repr: the code source's
    # default used to read `type='code', ..., kind='math'` (kind is for file sources; generators know theirs)
    assert "[{type: 'math'}, {type: 'code'}]" in sources and "kind=" not in sources


def test_config_errors_exit_2(capsys, tmp_path):
    assert main(["config", "rl.max_stepz=3"]) == 2
    assert "unknown key rl.max_stepz" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("rl: {max_steps: [\n")
    assert main(["run", str(bad)]) == 2
    assert "malformed YAML" in capsys.readouterr().err


def test_missing_model_path_is_a_clear_error(tmp_path):
    from selfdistill.models.loading import load_model

    with pytest.raises(ConfigError, match="model path not found: .*/no-model"):
        load_model(tmp_path / "no-model")


def test_stage_without_prerequisite_says_what_to_run(tmp_path, capsys):
    code = main(["sft", f"run.output_dir={tmp_path}", "tracking.report_to=none", "--round", "1"])
    assert code == 1
    assert "needs base, r1.collect first" in capsys.readouterr().err  # the demo's round 1 fine-tunes the base


def test_run_refuses_a_changed_config(tmp_path, capsys):
    from selfdistill.pipeline import Run

    Run(load_config(None, [f"run.output_dir={tmp_path}", "tracking.report_to=none"]))
    assert main(["eval", f"run.output_dir={tmp_path}", "tracking.report_to=none", "rl.max_steps=1"]) == 2
    assert "different config" in capsys.readouterr().err


def test_console_script_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "selfdistill.cli", "config", "run.name=x"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "name: x" in out.stdout

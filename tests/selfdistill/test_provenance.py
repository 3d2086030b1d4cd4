"""Provenance records: command, config hash, git state, versions, machine; read back for the report."""

import hashlib
import json
import subprocess

from selfdistill import provenance
from selfdistill.config import load_config


def test_record_read_and_summary(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("run:\n  seed: 7\n")
    cfg = load_config(cfg_file, ["run.name=prov"])
    assert cfg.source_path == str(cfg_file)
    first = provenance.record(tmp_path, cfg, argv=["selfdistill", "run", str(cfg_file), "run.name=prov"])
    provenance.record(tmp_path, cfg, argv=["selfdistill", "eval", str(cfg_file)])
    assert first["config_sha256"] == hashlib.sha256(cfg_file.read_bytes()).hexdigest()
    assert first["seed"] == 7 and first["config_fingerprint"] == cfg.fingerprint()
    assert first["command"] == f"selfdistill run {cfg_file} run.name=prov"
    assert {"torch", "transformers", "trl", "sympy"} <= set(first["libraries"])
    assert first["machine"]["cpus"] >= 1 and first["machine"]["cpu"]
    (tmp_path / provenance.PROVENANCE_FILE).open("a").write('{"torn": ')  # a crash mid-write
    records = provenance.read(tmp_path)
    assert len(records) == 2
    summary = provenance.summary(tmp_path)
    assert summary["command"].startswith("selfdistill eval")  # the latest invocation
    assert [i["command"].split()[1] for i in summary["invocations"]] == ["run", "eval"]
    md = "\n".join(provenance.markdown(summary))
    assert "## Provenance" in md and "selfdistill eval" in md and "seed 7" in md
    json.dumps(summary)  # report.json-serialisable


def test_git_state_sees_commit_and_dirty_tree(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    clean = provenance.git_state(tmp_path)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False
    (tmp_path / "untracked.txt").write_text("run output")
    assert provenance.git_state(tmp_path)["dirty"] is False  # untracked files are not code changes
    (tmp_path / "a.py").write_text("x = 2\n")
    assert provenance.git_state(tmp_path)["dirty"] is True


def test_no_checkout_and_no_file(tmp_path):
    assert provenance.git_state(tmp_path / "nowhere") == {"commit": None, "dirty": None}
    assert provenance.file_sha256(tmp_path / "missing.yaml") is None
    assert provenance.file_sha256(None) is None
    assert provenance.summary(tmp_path) == {} and provenance.markdown({}) == []

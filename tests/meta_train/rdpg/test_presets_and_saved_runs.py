"""The presets are reproducible, and runs saved with options since removed still load (or say
exactly why not)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from meta_train.cli import main
from meta_train.common.checkpoint import load_checkpoint, save_checkpoint
from meta_train.common.config import ConfigError
from meta_train.common.policies import REMOVED_OPTIONS, load_actor_from_run
from meta_train.rdpg.config import PRESETS_DIR, RDPGConfig
from meta_train.rdpg.trainer import RDPGTrainer

PRESETS = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _short_preset_run(root: Path, preset: str) -> tuple[dict[str, str], list[dict]]:
    """A short run of ``preset`` through the CLI: sha256 of every ``.safetensors`` file, and
    the progress rows without their timing columns."""
    steps = {"pusher": "2000", "panda": "3000"}.get(preset, "2000")
    assert main(["rdpg-her", "--preset", preset, "--total-env-steps", steps, "--run-dir",
                 str(root), "--run-name", preset, "--demo-episodes", "4", "--warmup-episodes",
                 "4", "--batch-episodes", "8", "--eval-every", "4", "--eval-episodes", "1",
                 "--checkpoint-every", "4", "--max-wall-s", "0", "--no-progress",
                 "--no-tensorboard", "--final-eval-episodes", "0"]) == 0
    run = root / preset
    hashes = {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in sorted(run.rglob("*.safetensors"))}
    lines = (run / "progress.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [{k: v for k, v in zip(header, line.split(","), strict=True)
             if k not in ("wall_s", "env_steps_per_s", "learner_wait_share")}
            for line in lines[1:]]
    return hashes, rows


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_two_short_runs_of_a_preset_are_identical(tmp_path, preset, capsys):
    a = _short_preset_run(tmp_path / "a", preset)
    b = _short_preset_run(tmp_path / "b", preset)
    assert a[0] and a[1] and int(a[1][-1]["updates"]) > 0  # it trained, and logged it
    assert a == b


def _with_saved_option(src: Path, dst: Path, name: str, value) -> Path:
    """A copy of run ``src`` whose checkpoints and policies were saved with ``name: value``
    in their config, as runs made before the option's removal were."""
    shutil.copytree(src, dst)
    for ckpt in [*(dst / "checkpoints").iterdir(), dst / "best", dst / "final"]:
        tg, ng, state = load_checkpoint(ckpt)
        state["config"][name] = value
        save_checkpoint(ckpt, tg, ng, state)
    return dst


def test_removed_options_load_at_their_off_value_and_name_the_commit_otherwise(
        tiny_run, tmp_path, capsys):
    off = _with_saved_option(tiny_run, tmp_path / "off", "n_step", 1)
    actor, run = load_actor_from_run(off, "final")
    assert "n_step" not in run.config
    assert main(["evaluate", str(off), "--episodes", "1", "--dynamics", "train"]) == 0
    assert main(["export", str(off), "--out", str(tmp_path / "off.onnx")]) == 0
    trainer = RDPGTrainer(RDPGConfig(**{**run.config, "total_env_steps": 600,
                                        "run_dir": str(tmp_path), "run_name": "off"}),
                          resume=True)
    trainer.close()

    on = _with_saved_option(tiny_run, tmp_path / "on", "n_step", 5)
    commit = REMOVED_OPTIONS["n_step"].commit[:12]
    with pytest.raises(ConfigError, match=f"--n-step 5.*{commit}"):
        load_actor_from_run(on, "final")
    capsys.readouterr()
    for argv in (["evaluate", str(on), "--episodes", "1"],
                 ["export", str(on), "--out", str(tmp_path / "on.onnx")],
                 ["rdpg-her", "--env-id", "MetaPusherPush-v0", "--hidden", "16",
                  "--run-dir", str(tmp_path), "--run-name", "on", "--resume", "--no-progress"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "--n-step 5" in err and commit in err and "docs/experiments.md" in err
    assert not (tmp_path / "on.onnx").exists()


def test_every_removed_option_is_gone_from_the_config_and_the_help(capsys):
    fields = set(RDPGConfig.__dataclass_fields__)
    assert not fields & set(REMOVED_OPTIONS)
    with pytest.raises(SystemExit):
        main(["rdpg-her", "--help"])
    text = capsys.readouterr().out
    for name in REMOVED_OPTIONS:
        assert "--" + name.replace("_", "-") not in text
    # docs/experiments.md names the commit that still has each one's code
    experiments = Path(__file__).resolve().parents[3] / "docs" / "experiments.md"
    for spec in REMOVED_OPTIONS.values():
        assert spec.commit[:7] in experiments.read_text()


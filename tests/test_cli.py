"""The ``lewel`` command line: it starts without torch, and every option says what it does and its default."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lewel import cli
from lewel.commands import training

PROBE = """
import json, sys, runpy
sys.argv = ["lewel"] + json.loads(sys.argv[1])
try:
    runpy.run_module("lewel.cli", run_name="__main__")
except SystemExit as done:
    code = done.code
heavy = sorted(name for name in ("torch", "torchvision", "numpy", "safetensors", "fastapi") if name in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}))
"""


def run_probe(argv: list[str]) -> dict:
    """Run ``python -m lewel.cli ARGV`` in a fresh interpreter; return its exit code and the heavy modules loaded."""
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["eval-maps", "--help"], ["--version"]])
def test_help_does_not_import_torch(argv):
    result = run_probe(argv)
    assert result == {"code": 0, "heavy": []}


def test_import_lewel_is_lazy_but_public_names_work():
    code = (
        "import sys, lewel; assert 'torch' not in sys.modules, 'import lewel loaded torch'; "
        "from lewel import load_model, ModelConfig, CheckpointError, map_index; "
        "assert 'torch' in sys.modules and callable(load_model) and issubclass(CheckpointError, ValueError); "
        "assert set(lewel.__all__) <= set(dir(lewel))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_unknown_public_name_is_an_attribute_error():
    import lewel

    with pytest.raises(AttributeError, match="no_such_name"):
        lewel.no_such_name  # noqa: B018


def test_parser_constants_match_the_library():
    from lewel.export import EXPORT_FORMATS
    from lewel.models.backbones import BACKBONES

    assert cli.BACKBONE_NAMES == tuple(sorted(BACKBONES))
    assert cli.EXPORT_FORMATS == EXPORT_FORMATS


def _subcommand(name: str):
    parser = cli.build_parser()
    commands = next(action for action in parser._actions if action.dest == "command")
    return commands.choices[name]


@pytest.mark.parametrize("name", ["train", "knn", "linear", "eval-maps"])
def test_every_option_has_help_and_a_shown_default(name):
    for action in _subcommand(name)._actions:
        if action.dest == "help":
            continue
        assert action.help, f"{name} {action.option_strings} has no help"
        if not action.required and action.dest != "data":
            assert "default" in action.help, f"{name} {action.option_strings} shows no default"


def test_train_defaults_follow_the_training_config():
    from lewel.train.config import TrainConfig

    helps = {action.dest: action.help for action in _subcommand("train")._actions}
    byol, moco = TrainConfig.for_method("lewel_b_eman"), TrainConfig.for_method("lewel_m")
    assert f"(default: {byol.lr}; MoCo family: {moco.lr})" in helps["lr"]
    assert f"(default: {byol.model.dim}; MoCo family: {moco.model.dim})" in helps["dim"]
    assert f"(default: {byol.batch_size})" in helps["batch_size"]


def test_train_options_still_default_to_none_so_the_recipe_wins():
    args = cli.build_parser().parse_args(["train", "--data", "scenes:8"])
    assert all(getattr(args, key) is None for key in training.TRAIN_OPTIONS if key != "data")
    assert all(getattr(args, key) is None for key in training.MODEL_OPTIONS)
    assert args.method is None and args.config is None

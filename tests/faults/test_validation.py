"""Validate before work, and the exit-2 contract: every user mistake is refused with exit code
2 and one line on stderr (no traceback), before a baseline trains, a run folder or an MLflow
run exists (issue 14, parts 4 and 5).

Each test injects the mistake for real (a YAML file with the wrong type, a policy file with a
layer deleted, a model file that raises, a run folder with a damaged file) and runs the CLI
in this process (``autoprune.cli.main``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import autoprune.workflow.baseline as baseline_module
from agents._run_store import RunStore
from autoprune.core.policy import Policy
from autoprune.core.specs import discover_layers
from autoprune.data import DataSplits
from autoprune.workflow.baseline import build_for
from autoprune.workflow.config import SearchConfig

USER_MODELS = """
from torch import nn


def build_raises(num_classes):
    raise ValueError("width must be positive")


class BadForward(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.fc = nn.Linear(5, num_classes)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


def forward_raises(num_classes):
    return BadForward(num_classes)


def classifier_only(num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
"""


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder (``runs/`` is created here) in which nothing may train."""
    monkeypatch.chdir(tmp_path)

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a baseline was trained before the mistake was refused")

    monkeypatch.setattr(baseline_module, "train", no_training)
    return tmp_path


def nothing_written(folder: Path) -> None:
    """No baseline checkpoint, run folder or MLflow store under ``folder/runs``."""
    runs = folder / "runs"
    assert not list(runs.glob("checkpoints/*.pt"))
    assert not list(runs.glob("searches/*"))
    assert not (runs / "mlflow").exists()


def yaml_config(folder: Path, text: str) -> str:
    path = folder / "config.yaml"
    path.write_text(text + "\nepisodes: 2\n")
    return str(path)


@pytest.fixture
def user_models(here: Path) -> Path:
    path = here / "my_models.py"
    path.write_text(USER_MODELS)
    return path


@pytest.fixture(scope="module")
def untrained(tmp_path_factory: pytest.TempPathFactory, digits: DataSplits) -> Path:
    """The state dict of an untrained demo CNN (chance level on digits)."""
    path = tmp_path_factory.mktemp("untrained") / "untrained.pt"
    torch.manual_seed(0)
    torch.save(build_for("demo", digits).state_dict(), path)
    return path


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("targets: 5", "config key 'targets' must be a list"),
        ("seed: abc", "config key 'seed' must be an integer, got 'abc'"),
        ('min_keep: "0.5"', "config key 'min_keep' must be a number, got '0.5'"),
        ("profile: 5", "config key 'profile' must be a string, got 5"),
        ("reconstruct: maybe", "config key 'reconstruct' must be true or false"),
        ("agent_options: {warmup_episodes: abc}", "agent option 'warmup_episodes'"),
        ("importance: l3", "unknown importance 'l3'"),
    ],
)
def test_wrong_yaml_types_are_one_line(here: Path, refused, text: str, named: str) -> None:
    line = refused("search", "--config", yaml_config(here, text))
    assert named in line
    nothing_written(here)


@pytest.mark.parametrize(
    ("target", "advice"),
    [
        ("flops=1.7", "write a fraction such as flops=0.7"),
        ("flops=170%", "or an absolute value like flops=10M"),
        ("size=50", "size=50KB"),
        ("latency=1.7", "latency=1.7ms"),
    ],
)
def test_a_fraction_above_one_is_a_typo(here: Path, refused, target: str, advice: str) -> None:
    line = refused("search", "--target", target)
    assert target in line and advice in line
    nothing_written(here)


def test_infeasible_budget_is_refused_before_training(here: Path, refused) -> None:
    line = refused("search", "--target", "flops=0.001", "--episodes", "2")
    assert "infeasible" in line and "min_keep" in line
    nothing_written(here)


def test_model_without_prunable_layer_is_refused_before_training(
    user_models: Path, refused
) -> None:
    line = refused("search", "--model", f"{user_models}:classifier_only")
    assert "no layer to search in mode 'prune'" in line
    nothing_written(user_models.parent)


def test_admm_without_size_target_is_refused_before_training(here: Path, refused) -> None:
    line = refused("search", "--agent", "admm")
    assert "needs a model-size target" in line
    nothing_written(here)


@pytest.mark.parametrize(
    ("storage", "named"),
    [
        ("redis://localhost:6379", "is not a database URL Optuna can use"),
        ("sqlite:///{here}", "cannot be opened"),  # a folder, not a database file
    ],
)
def test_bad_optuna_storage_is_refused_first(here: Path, refused, storage: str, named) -> None:
    config = yaml_config(here, f"agent: tpe\nstorage: {storage.format(here=here)}")
    line = refused("search", "--config", config)
    assert named in line
    nothing_written(here)


@pytest.mark.parametrize("uri", ["ftp://host/mlruns", "s3://bucket/mlruns"])
def test_non_http_tracking_uri_is_refused(here: Path, refused, uri: str) -> None:
    line = refused("search", "--tracking-uri", uri)
    assert f"tracking URI '{uri}'" in line and "http(s)://" in line
    nothing_written(here)


def test_unreachable_tracking_database_is_refused_before_training(here: Path, refused) -> None:
    pytest.importorskip("psycopg2")
    line = refused("search", "--tracking-uri", "postgresql+psycopg2://u@127.0.0.1:1/db")
    assert "tracking database postgresql+psycopg2://u@127.0.0.1:1/db does not answer" in line
    nothing_written(here)


def test_runs_folder_that_cannot_be_written(here: Path, refused) -> None:
    (here / "runs").write_text("a file where the runs folder should be")
    line = refused("search", "--episodes", "2")
    assert "runs folder runs is not writable" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_runs_folder(here: Path, refused) -> None:
    (here / "runs").mkdir()
    (here / "runs").chmod(0o555)
    try:
        line = refused("search", "--episodes", "2")
    finally:
        (here / "runs").chmod(0o755)
    assert "is not writable" in line


@pytest.mark.parametrize(
    ("function", "named"),
    [
        ("build_raises", "raised ValueError: width must be positive at "),
        ("forward_raises", "the model's forward pass raised RuntimeError: mat1 and mat2"),
    ],
)
def test_user_model_that_raises_names_its_file_and_line(
    user_models: Path, refused, function: str, named: str
) -> None:
    line = refused("search", "--model", f"{user_models}:{function}")
    assert named in line
    lineno = 6 if function == "build_raises" else 16
    assert f"{user_models}:{lineno}" in line
    nothing_written(user_models.parent)


def test_chance_level_weights_are_refused(here: Path, refused, untrained: Path) -> None:
    line = refused("search", "--weights", str(untrained), "--episodes", "2")
    assert "chance level for 10 classes" in line
    nothing_written(here)


@pytest.fixture
def policies(here: Path, digits: DataSplits, untrained: Path) -> dict[str, Path]:
    """Hand-edited policies of the demo CNN: a layer deleted, one added, a wrong type."""
    model = build_for("demo", digits)
    document = Policy.uniform(discover_layers(model, digits.input_shape), 0.5).to_dict()
    edits = {
        "missing": lambda d: d["layers"].pop("conv2"),
        "extra": lambda d: d["layers"].update(conv9=d["layers"]["conv1"]),
        "wrong_type": lambda d: d["layers"]["conv1"].update(keep_ratio="0.5"),
    }
    paths = {}
    for name, edit in edits.items():
        edited = json.loads(json.dumps(document))
        edit(edited)
        paths[name] = here / f"{name}.json"
        paths[name].write_text(json.dumps(edited))
    return paths


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ("missing", "policy has no entry for layer(s) ['conv2']"),
        ("extra", "policy names layer(s) ['conv9'] that the model does not have"),
        ("wrong_type", "policy layer 'conv1' is malformed: keep_ratio must be a number"),
    ],
)
def test_hand_edited_policy_is_refused_naming_the_layer(
    policies: dict[str, Path], untrained: Path, refused, edit: str, named: str
) -> None:
    argv = ["apply", str(policies[edit]), "--model", "demo", "--dataset", "digits"]
    line = refused(*argv, "--weights", str(untrained))
    assert named in line


@pytest.fixture
def run_folder(here: Path, untrained: Path) -> Path:
    """A run folder as a search leaves it (config, empty history, lock file)."""
    config = SearchConfig(weights=str(untrained), agent="random", episodes=3)
    with RunStore.create(here / "runs" / "searches" / "run1", config.to_dict()) as store:
        return store.path


def test_damaged_saved_config_of_a_resume(run_folder: Path, refused) -> None:
    (run_folder / "config.json").write_bytes(b"\xff\xfe\x00 not text")
    line = refused("search", "--resume", "run1")
    assert "config.json is not text" in line


def test_damaged_checkpoint_pointer_of_a_resume(run_folder: Path, refused) -> None:
    (run_folder / "checkpoint.json").write_bytes(b"\x00\xff garbage")
    line = refused("search", "--resume", "run1")
    assert "checkpoint.json is damaged" in line


def test_damaged_checkpoint_file_of_a_resume(run_folder: Path, refused) -> None:
    with RunStore.open(run_folder) as store:

        def write(folder: Path) -> None:
            (folder / "history.json").write_text("[]")
            (folder / "rng.json").write_text('{"torch": [1, 2')  # torn

        store.write_checkpoint(0, write)
    line = refused("search", "--resume", "run1")
    assert "rng.json is damaged" in line
    assert not (run_folder.parent.parent / "mlflow").exists()

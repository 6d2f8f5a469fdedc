"""A database password given in --storage or --tracking-uri is never stored, logged or
printed; a resume still works (the password comes from the environment or the flag)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents import open_run
from autoprune.cli import main
from autoprune.core.errors import AutopruneError
from autoprune.searches.search_run import run_params
from autoprune.system.database_url import drop_passwords, hide_passwords, parse_database_url
from autoprune.tracking import TrackingStore, flatten_params
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession

SECRET = "s3cretPW"
URL = f"postgresql://ann:{SECRET}@127.0.0.1:1/optuna"


@pytest.mark.parametrize(
    ("url", "hidden", "dropped"),
    [
        (URL, "postgresql://ann:***@127.0.0.1:1/optuna", "postgresql://ann@127.0.0.1:1/optuna"),
        ("mysql://u:p@ss@h/db", "mysql://u:***@h/db", "mysql://u@h/db"),
        ("postgresql://h/db?password=x&sslmode=require", "postgresql://h/db?password=***&sslmode"
         "=require", "postgresql://h/db?sslmode=require"),
        ("sqlite:///runs/optuna.db", "sqlite:///runs/optuna.db", "sqlite:///runs/optuna.db"),
    ],
)  # fmt: skip
def test_passwords_are_hidden_or_dropped(url: str, hidden: str, dropped: str) -> None:
    assert hide_passwords(url) == hidden
    assert drop_passwords(url) == dropped


def test_config_json_holds_no_password_and_resume_takes_it_again(
    tiny_config: SearchConfig,
) -> None:
    config = tiny_config.replace(storage=URL, tracking_uri=f"http://bob:{SECRET}@localhost:1")
    with open_run(config, run_name="secret") as store:
        store.save_tracking_run("0" * 32, config.tracking_uri or "")
    run = Path(config.runs_dir) / "searches" / "secret"
    for name in ("config.json", "tracking.json"):
        assert SECRET not in (run / name).read_text()
    saved = json.loads((run / "config.json").read_text())
    assert saved["storage"] == "postgresql://ann@127.0.0.1:1/optuna"  # libpq: PGPASSWORD

    with open_run(config, resume="secret"):  # the password given again
        pass
    with open_run(config.replace(storage=saved["storage"]), resume="secret"):  # from the env
        pass
    with pytest.raises(AutopruneError, match="storage"):  # another database is refused
        open_run(config.replace(storage="postgresql://ann@other/optuna"), resume="secret")


def test_mlflow_params_and_tags_show_no_password(
    tiny_config: SearchConfig, tiny_session: SearchSession
) -> None:
    config = tiny_config.replace(storage=URL)
    params = flatten_params(run_params(config, tiny_session))
    assert params["storage"] == "postgresql://ann:***@127.0.0.1:1/optuna"
    assert not any(SECRET in value for value in params.values())
    assert SECRET not in json.dumps(flatten_params({"nested": {"uri": [URL]}}))


@pytest.mark.parametrize(
    "url", [URL, f"oracle+nodriver://ann:{SECRET}@h/db", f"file://ann:{SECRET}@h/x"]
)
def test_tracking_uri_errors_never_print_the_password(url: str) -> None:
    with pytest.raises(AutopruneError) as caught:
        TrackingStore.resolve(url).check(timeout=1)
    assert SECRET not in str(caught.value) and "***" in str(caught.value)


def test_storage_errors_never_print_the_password() -> None:
    with pytest.raises(AutopruneError) as caught:
        parse_database_url(f"postgresql+nodriver://ann:{SECRET}@h/db", "storage")
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("flag", ["--storage", "--tracking-uri"])
def test_cli_search_with_an_unreachable_database_prints_no_password(
    flag: str, tiny_config: SearchConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["search", "--agent", "tpe", flag, URL, "--runs-dir", tiny_config.runs_dir]
    code = main([*argv, "--weights", str(tiny_config.weights), "-n", "2"])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    assert SECRET not in captured.err + captured.out
    assert "ann:***@" in captured.err

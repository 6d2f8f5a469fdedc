"""torchvision tests run only where torchvision imports (``make test-tv``'s
``.venv-tv``); in ``.venv``, whose CPU torch has no matching torchvision, they are skipped."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "torchvision: needs torchvision (run in .venv-tv)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a torchvision built for another torch fails late
        skip = pytest.mark.skip(reason=f"torchvision does not import ({exc}); run make test-tv")
        for item in items:
            if item.get_closest_marker("torchvision") is not None:
                item.add_marker(skip)

from __future__ import annotations

import pytest

from tests.workspaces.helpers import use_cheap_argon2


@pytest.fixture
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash passwords with a cheap Argon2 so that tests creating users stay fast."""
    use_cheap_argon2(monkeypatch)

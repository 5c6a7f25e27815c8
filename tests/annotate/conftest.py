from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from changeover.study import Study
from changeover.workspace import Workspace
from tests.annotate.helpers import make_study


@pytest.fixture
def labelling(tmp_path: Path) -> Iterator[tuple[Study, Workspace]]:
    study, workspace = make_study(tmp_path / "study")
    yield study, workspace
    workspace.close()

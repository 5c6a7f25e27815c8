"""The `signals:` and `style_guide:` sections of the study file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from changeover.study import Study


class StyleGuide(BaseModel):
    """The house style, as text for judges and annotators and as rules for the checks."""

    model_config = ConfigDict(extra="forbid")


class SignalsSettings(BaseModel):
    """Which automated signals to compute, per dimension."""

    model_config = ConfigDict(extra="forbid")


def check_signals(study: Study) -> None:
    """Cross-checks between signals and the rest of the study; raise ValueError naming the key."""

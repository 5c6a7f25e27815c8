"""Provider adapters: one module per provider SDK, behind one interface."""

from changeover.providers.settings import ModelSettings

__all__ = ["ModelSettings"]

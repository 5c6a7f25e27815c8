"""Workspace commands: init, import, export, generate."""

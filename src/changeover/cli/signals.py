"""Signal commands: score."""

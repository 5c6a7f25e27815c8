"""Automated signals: judges and detectors that turn a response into a discrete level."""

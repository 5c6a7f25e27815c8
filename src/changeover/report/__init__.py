"""Reports: the terminal summary (and, later, the HTML report)."""

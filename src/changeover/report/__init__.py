"""Reports: the terminal summary, and the HTML / Markdown / JSON report of a fit."""

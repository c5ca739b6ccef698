"""The HTML model card: a version's figures, examples and heatmaps in one file."""

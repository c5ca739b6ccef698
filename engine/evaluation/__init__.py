"""How good a model version is: metrics with intervals, and the HTML model card."""

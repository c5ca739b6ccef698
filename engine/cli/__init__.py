"""The headless command line `linnaeus`, and the JSON protocol the GUI speaks with it."""

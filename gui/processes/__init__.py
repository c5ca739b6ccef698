"""Running `linnaeus` commands as child processes (training, export) for the GUI."""

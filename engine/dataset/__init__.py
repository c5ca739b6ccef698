"""Data sets: finding images in folders, label tables, splits, importing and exporting labels."""

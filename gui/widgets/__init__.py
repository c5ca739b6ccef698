"""Small widgets and helpers that several panels share."""

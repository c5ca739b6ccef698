"""The built-in demo: generated images, the demo project, and the installation self-test."""

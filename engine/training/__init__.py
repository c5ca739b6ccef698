"""Training models (TensorFlow), behind a TensorFlow-free configuration (`config`)."""

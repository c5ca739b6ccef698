"""Images: reading every format, preparing model input, thumbnails, caches, augmentation."""

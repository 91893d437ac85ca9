"""Reading inputs (images) and writing outputs."""

from hmr_fit.io.images import CameraExif, ImageInfo, read_image, resize_for_detection, to_original_pixels

__all__ = ["CameraExif", "ImageInfo", "read_image", "resize_for_detection", "to_original_pixels"]

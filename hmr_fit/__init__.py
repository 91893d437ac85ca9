"""hmr-fit: human mesh recovery by fitting a parametric body model to 2D keypoints."""

__version__ = "0.1.0"

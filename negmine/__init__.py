"""negmine: build the negative ("other") part of image-classification datasets."""

__version__ = "0.1.0"

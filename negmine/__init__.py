"""negmine: build the negative ("other") part of image-classification datasets."""

__version__ = "0.2.0"   # 0.2: journal entries point into scratch packs (runs of 0.1 do not resume)

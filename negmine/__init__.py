"""negmine: build the negative ("other") part of image-classification datasets."""

__version__ = "0.3.0"   # 0.3: fast phash folds the resize into the DCT (0.2 runs do not resume); 0.2: scratch packs

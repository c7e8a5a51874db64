"""Synthetic negatives: annotations of the positives and the cutouts made from them."""

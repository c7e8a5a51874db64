"""What keeps the positives out of the negatives: one set of checks that every command applies
(taxonomy and name vocabularies, co-occurrence contamination, perceptual hashes, the content check)."""

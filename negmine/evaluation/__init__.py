"""`negmine eval`: a trainer's scores for the images of one split of a negmine output, joined to its
manifest and measured (did the negatives help?), by stage: `scores` reads and joins, `metrics`
computes, `attribution` says which source classes the false positives come from, `report` and
`plots` write what a person reads, `compare` sets several sweep members side by side."""

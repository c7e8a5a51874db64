"""How many negatives, in what order, from which rows, into which split."""

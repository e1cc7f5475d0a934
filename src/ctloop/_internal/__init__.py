"""Private helpers of the base layer: hashing, ids, clocks, names, environment capture."""

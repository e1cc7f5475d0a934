"""Layer 2: versioned datasets: content digests, profiles, pointer files and diffs."""

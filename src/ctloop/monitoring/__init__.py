"""Monitoring: drift tests, mergeable reference profiles, realised and estimated performance."""

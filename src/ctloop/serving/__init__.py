"""Serving: deployments (the desired state of an endpoint), routing, micro-batching,
the inference protocols, prediction and feedback logs. Loaded lazily by its users."""

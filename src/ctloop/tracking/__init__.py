"""Layer 2: experiments, runs, params, metrics, tags, artifacts and inputs."""

"""Resource APIs of the HTTP backend: the same methods as the local ones, over REST."""

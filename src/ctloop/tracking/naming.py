"""Readable default names for runs (``brave-otter-417``)."""

from __future__ import annotations

import random

_ADJECTIVES = (
    "agile",
    "amber",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "crisp",
    "eager",
    "fair",
    "gentle",
    "glad",
    "golden",
    "keen",
    "kind",
    "lucid",
    "merry",
    "nimble",
    "noble",
    "quick",
    "quiet",
    "rapid",
    "sharp",
    "silver",
    "smart",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "wise",
)
_NOUNS = (
    "badger",
    "bear",
    "crane",
    "dolphin",
    "eagle",
    "falcon",
    "fox",
    "gecko",
    "hare",
    "heron",
    "ibis",
    "jaguar",
    "koala",
    "lark",
    "lynx",
    "marten",
    "newt",
    "orca",
    "otter",
    "owl",
    "panda",
    "puffin",
    "quail",
    "raven",
    "robin",
    "seal",
    "stork",
    "tiger",
    "wolf",
    "yak",
)


def random_run_name() -> str:
    """A short, pronounceable, probably unique name for a run."""
    rng = random.SystemRandom()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randint(100, 999)}"

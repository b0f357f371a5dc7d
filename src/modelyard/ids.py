"""Identifier and clock helpers shared by every room."""

from __future__ import annotations

import random
import time
import uuid

_ADJECTIVES = (
    "amber",
    "bold",
    "brisk",
    "calm",
    "clever",
    "crisp",
    "deft",
    "eager",
    "fleet",
    "gentle",
    "glad",
    "keen",
    "lively",
    "lucid",
    "merry",
    "nimble",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "sharp",
    "shy",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "wise",
    "zesty",
)
_NOUNS = (
    "otter",
    "heron",
    "lynx",
    "finch",
    "badger",
    "marten",
    "ibis",
    "koala",
    "panda",
    "wren",
    "bison",
    "crane",
    "gecko",
    "hare",
    "lemur",
    "moose",
    "newt",
    "okapi",
    "puffin",
    "quail",
    "raven",
    "seal",
    "tapir",
    "vole",
    "yak",
    "zebra",
    "falcon",
    "dingo",
    "egret",
    "mole",
)


def new_id() -> str:
    """A 32-character hex id, the shape MLflow clients expect for run ids."""
    return uuid.uuid4().hex


def now_ms() -> int:
    """Wall-clock time in integer milliseconds since the epoch (MLflow's unit)."""
    return time.time_ns() // 1_000_000


def friendly_name() -> str:
    """A readable run name such as ``swift-otter-417`` for runs started without one."""
    rng = random.Random()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randrange(1000)}"

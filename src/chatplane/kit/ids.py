"""Identifiers.

Ids follow the seeds' CUID style: `c`, a base-36 timestamp, a base-36 counter, a host
fingerprint and random base-36 characters, 25 characters in all
(e.g. `clx1abc2d0000ab12cd34ef56`). They sort roughly by creation time.
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_counter = itertools.count(secrets.randbelow(36**4))


def _base36(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, digit = divmod(value, 36)
        out.append(_ALPHABET[digit])
    return "".join(reversed(out))


def _fingerprint() -> str:
    seed = os.getpid() + sum(ord(ch) for ch in socket.gethostname())
    return _base36(seed, 4)


_FINGERPRINT = _fingerprint()


def cuid() -> str:
    """A 25-character collision-resistant id."""
    millis = int(time.time() * 1000)
    return (
        "c"
        + _base36(millis, 8)
        + _base36(next(_counter) % 36**4, 4)
        + _FINGERPRINT
        + _base36(secrets.randbits(41), 8)  # 36**8 > 2**41: every value fits
    )

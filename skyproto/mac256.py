"""The Mac256 lock-and-key response sent with every registration request (docs/protocol.md §4).

The challenge is the decimal Unix time of the request. The response mixes a SHA-256 digest of the
challenge and a fixed key with the "CS64" checksum of the challenge and the application id, taken
over little-endian 32-bit words modulo ``2**31 - 1``.

Theory of operation, for the fast path below:

* The clear text ``challenge + APP_ID`` is always padded with 1 to 8 ``"0"`` characters (eight,
  not zero, when it is already a multiple of 8 long), so it splits into an even number of words.
* The four checksum keys are the first four little-endian digest words with the top bit cleared.
* The final mix XORs the full (unmasked) digest words with ``m, s, m, s``; packing those four
  words little-endian and hex-encoding the bytes gives the least-significant-byte-first encoding
  the protocol wants.
* The checksum is exact with Python integers; ``s`` is reduced once at the end. It uses only
  sums and products, so reducing ``m`` less often than the reference does changes nothing.
* A ten-digit challenge (every Unix time from September 2001 to November 2286) has the fastest
  path: its clear text is always 32 bytes, eight words, and only the first three depend on the
  challenge; the other five are the same every time, so they are read once, at import.
"""

from __future__ import annotations

import datetime as dt
import struct
from hashlib import sha256

from .errors import LocalProtocolError

__all__ = ["lock_and_key", "mac256"]

#: The application id; it ends the clear text and appears in the LockAndKey header.
APP_ID = "msmsgs@msnmsgr.com"
#: The fixed key hashed after the challenge (public: every client ships it).
MAC256_KEY = "Q1P7W2E4J9R8U3S5"

_MODULUS = 0x7FFFFFFF  # 2**31 - 1, a Mersenne prime
_WORD_MULTIPLIER = 0x0E79A9C1
_KEY_MASK = 0x7FFFFFFF  # clears the top bit of each digest word
_PAD_CHAR = b"0"
_BLOCK = 8  # the clear text is padded to a multiple of this many bytes

_APP_ID_BYTES = APP_ID.encode("ascii")
_KEY_BYTES = MAC256_KEY.encode("ascii")
# Indexed by len(clear text) % 8: always 1..8 pad characters.
_PADDING = tuple(_PAD_CHAR * (_BLOCK - r) for r in range(_BLOCK))
# Four little-endian 32-bit words: the digest keys on the way in, the response on the way out.
_FOUR_WORDS = struct.Struct("<4I")
# Unpackers for clear texts of up to 256 bytes, so the common case builds no format string.
_WORD_STRUCTS = tuple(struct.Struct(f"<{n}I") for n in range(65))
_UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# The ten-digit case: words 0-2 hold the challenge (the third ends with "ms", the start of the
# application id); words 3-7 hold the rest of the application id and the padding.
_TEN = 10
_TEN_HEAD = struct.Struct("<3I")
_TEN_TAIL_BYTES = (_APP_ID_BYTES + _PADDING[(_TEN + len(_APP_ID_BYTES)) % _BLOCK])[2:]
_Y1, _X2, _Y2, _X3, _Y3 = struct.unpack("<5I", _TEN_TAIL_BYTES)
# The x words are scaled by the multiplier before use: done once here for the fixed ones.
_X2M = _X2 * _WORD_MULTIPLIER % _MODULUS
_X3M = _X3 * _WORD_MULTIPLIER % _MODULUS


def mac256(challenge: str) -> str:
    """The 32-hex-digit lock-and-key response to ``challenge`` (ASCII only)."""
    if not isinstance(challenge, str):
        raise LocalProtocolError(
            f"a Mac256 challenge must be a str, not {type(challenge).__name__}"
        )
    try:
        raw = challenge.encode("ascii")
    except UnicodeEncodeError:
        raise LocalProtocolError("a Mac256 challenge must be ASCII text") from None

    h0, h1, h2, h3 = _FOUR_WORDS.unpack_from(sha256(raw + _KEY_BYTES).digest())
    a = h0 & _KEY_MASK
    b = h1 & _KEY_MASK
    c = h2 & _KEY_MASK
    d = h3 & _KEY_MASK

    if len(raw) == _TEN:
        # Reduced once a pair: the sums and products are exact, and only their residues count.
        x0, y0, x1 = _TEN_HEAD.unpack(raw + b"ms")
        m = x0 * _WORD_MULTIPLIER * a + b
        s = m
        m = ((m + y0) * c + d) % _MODULUS
        s += m
        m = (m + x1 * _WORD_MULTIPLIER) * a + b
        s += m
        m = ((m + _Y1) * c + d) % _MODULUS
        s += m
        m = (m + _X2M) * a + b
        s += m
        m = ((m + _Y2) * c + d) % _MODULUS
        s += m
        m = (m + _X3M) * a + b
        s += m
        m = ((m + _Y3) * c + d) % _MODULUS
        s += m
        m = (m + b) % _MODULUS
        s = (s + d) % _MODULUS
        return _FOUR_WORDS.pack(h0 ^ m, h1 ^ s, h2 ^ m, h3 ^ s).hex()

    clear = raw + _APP_ID_BYTES
    clear += _PADDING[len(clear) % _BLOCK]
    word_count = len(clear) >> 2
    if word_count < len(_WORD_STRUCTS):
        words = _WORD_STRUCTS[word_count].unpack(clear)
    else:
        words = struct.unpack(f"<{word_count}I", clear)

    m = 0
    s = 0
    pairs = iter(words)
    for x, y in zip(pairs, pairs):  # noqa: B905 - the word count is always even
        m = ((m + x * _WORD_MULTIPLIER % _MODULUS) * a + b) % _MODULUS
        s += m
        m = ((m + y) * c + d) % _MODULUS
        s += m
    m = (m + b) % _MODULUS
    s = (s + d) % _MODULUS

    return _FOUR_WORDS.pack(h0 ^ m, h1 ^ s, h2 ^ m, h3 ^ s).hex()


def lock_and_key(now: dt.datetime) -> str:
    """The ``LockAndKey`` header value for a request made at ``now`` (an aware datetime).

    The challenge is ``now`` in whole Unix seconds, truncated toward zero as ``int(time())``
    would (a fraction of a second is dropped).
    """
    if not isinstance(now, dt.datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise LocalProtocolError("lock_and_key needs an aware datetime")
    since_epoch = now - _UNIX_EPOCH
    # timedelta keeps days signed and seconds/microseconds non-negative: that sum is the floor.
    seconds = since_epoch.days * 86400 + since_epoch.seconds
    if seconds < 0 and since_epoch.microseconds:
        seconds += 1
    challenge = str(seconds)
    return f"appId={APP_ID}; time={challenge}; lockAndKeyResponse={mac256(challenge)}"

"""The protobuf wire format, read by hand: the few messages read here (Kubernetes objects sent
by kubectl's typed clients, the queue-proxy's ``Stat``) need no generated code.

``fields`` splits a message into ``(field number, wire type, value)``: an ``int`` for varints,
``bytes`` for the 64-bit and 32-bit fixed-width fields and for length-delimited ones. It raises
``ValueError`` for a truncated message and for the group wire types.
"""

from __future__ import annotations

from typing import Any

VARINT, I64, LEN, I32 = 0, 1, 2, 5
_FIXED = {I64: 8, I32: 4}


def varint(buf: bytes, i: int) -> tuple[int, int]:
    """The varint at ``i`` and the offset after it."""
    result = 0
    for n in range(10):
        if i + n >= len(buf):
            raise ValueError(f"truncated varint at byte {i}")
        b = buf[i + n]
        result |= (b & 0x7F) << (7 * n)
        if not b & 0x80:
            return result, i + n + 1
    raise ValueError(f"varint longer than 10 bytes at byte {i}")


def fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) for each field of a message."""
    out: list[tuple[int, int, Any]] = []
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == VARINT:
            v, i = varint(buf, i)
            out.append((num, wt, v))
            continue
        if wt == LEN:
            n, i = varint(buf, i)
        elif wt in _FIXED:
            n = _FIXED[wt]
        else:
            raise ValueError(f"unsupported wire type {wt} for field {num}")
        if i + n > len(buf):
            raise ValueError(
                f"field {num} runs past the end of the message ({i + n} > {len(buf)} bytes)"
            )
        out.append((num, wt, buf[i : i + n]))
        i += n
    return out

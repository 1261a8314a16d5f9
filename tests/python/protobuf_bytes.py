"""Protobuf bytes written by hand, for bodies the Python protobuf library
cannot or will not build (malformed, 10^6-element, nested past its recursion
limit). Shared by the bad-input tests and bench/huge_span.py."""


def ld(field, payload):
    """One length-delimited protobuf field."""
    n, v = len(payload), bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        v.append(b | 0x80 if n else b)
        if not n:
            break
    return bytes([(field << 3) | 2]) + bytes(v) + payload


def varint(n):
    v = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        v.append(b | 0x80 if n else b)
        if not n:
            return bytes(v)


def request(*spans):
    return ld(1, ld(2, b"".join(ld(2, s) for s in spans)))


def attribute(key, value):
    return ld(9, ld(1, key) + ld(2, ld(1, value)))

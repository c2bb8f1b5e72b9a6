"""Bring loopback up in a fresh network namespace, then become the given command.

``unshare -n python loopback.py CMD ...``: the namespace has no interface but ``lo``, and that
one down; this sets it up (the ioctl ``ip link set lo up`` makes) and execs ``CMD``. Ray
inside then finds no address but 127.0.0.1, so nothing it starts can reach beyond this
machine.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import sys

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = "16sh14s"


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(_IFREQ, b"lo", 0, b"")
        flags = struct.unpack(_IFREQ, fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | IFF_UP, b""))


if __name__ == "__main__":
    loopback_up()
    os.execvp(sys.argv[1], sys.argv[1:])

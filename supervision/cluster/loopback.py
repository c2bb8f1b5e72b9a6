"""Try a cluster on one machine without touching the network: loopback only.

``unshare -n python -m supervision.cluster.loopback CMD ...`` (as root): the new network
namespace has no interface but ``lo``, and that one down; this sets it up (the ioctl that
``ip link set lo up`` makes) and execs ``CMD``. Ray inside finds no address but 127.0.0.1, so
nothing it starts can reach beyond this machine (outside, Ray binds the machine's own address
and probes a public resolver to find it). The cluster tests and benchmarks run this way.
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
    os.execvp(sys.argv[1], sys.argv[1:])  # noqa: S606 - a given command, not a shell line

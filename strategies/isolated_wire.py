"""The frames between a ``ProcessStrategy`` and its child: one format, read by both sides."""

from __future__ import annotations

import struct

from actors.messages import Side, Signal

SIGNALS = (Signal.HOLD, Signal.BUY, Signal.SELL)
SIGNAL_CODE = {signal: code for code, signal in enumerate(SIGNALS)}
WARM_BIT = 4
SIDES = (None, Side.BUY, Side.SELL)
SIDE_CODE = {side: code for code, side in enumerate(SIDES)}

# op, ts_ms, price, bid, ask, amount, recv_ns, side; the pair's UTF-8 bytes follow.
TICK = struct.Struct("<cqddddqB")
PRICE = struct.Struct("<cd")
OP_TICK, OP_FEED, OP_PRICE, OP_WARM = b"T", b"F", b"P", b"W"
READY, ERROR = ord("R"), ord("E")

"""Benchmarks of trade-conductor: ``python -m bench [--quick] [--only NAME ...]``.

Not part of the tests. Each module measures one thing on the production code paths and says
how in its docstring: ``peer`` (replay speed and memory as multiples of nautilus_trader on the
same CSV in the same run, and fills against a reference loop), ``live`` (tick -> decision and
tick -> order acknowledgement latency at 1-200 pairs, and the noisy neighbour), ``replay``
(ticks/s on ten pairs through the actors and the synchronous core, and the recorded files),
``soak`` (memory growth over 10 million ticks), ``startup`` (200 pairs up, and crash -> next
processed tick), ``fleet`` (1,000 pairs: steady latency and cost, start and stop, a burst).
``probe`` holds the instrumented strategy they plug in, ``data`` the seeded data sets,
``report`` the table and the JSON, ``peer_child`` the peer's run (the only module that imports
nautilus_trader). ``python -m bench.profile sync|actors|live200|fleet|split|budget|instructions``
prints the profile behind a miss.
"""

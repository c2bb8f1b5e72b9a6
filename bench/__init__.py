"""Benchmarks of trade-conductor: ``python -m bench [--quick] [--only NAME ...]``.

Not part of the tests. Each module measures one thing on the production code paths and says
how in its docstring: ``live`` (tick -> decision and tick -> order acknowledgement latency at
1-200 pairs, and the noisy neighbour), ``replay`` (ticks/s through the actors and the
synchronous core, with the bare-loop floor), ``soak`` (memory growth over a million ticks),
``startup`` (200 pairs up, and crash -> next processed tick). ``probe`` holds the instrumented
strategy they plug in, ``data`` the seeded data sets, ``report`` the table and the JSON.
``python -m bench.profile sync|actors|live200`` prints the per-thread cProfile behind a miss.
"""

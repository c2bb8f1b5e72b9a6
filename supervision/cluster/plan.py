"""Where the pairs go: shards of pairs, the nodes that can host a shard, shard generations.

Plain values and functions, no Ray: the head calls them on its supervisor's thread, the tests
call them directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs
from loguru import logger


def plan_shards(pairs: Sequence[str], shards: int) -> tuple[tuple[str, ...], ...]:
    """Split ``pairs`` into ``shards`` contiguous slices whose sizes differ by at most one."""
    if not 1 <= shards <= len(pairs):
        raise ValueError(f"shards must be from 1 to {len(pairs)}, got {shards}")
    size, extra = divmod(len(pairs), shards)
    out: list[tuple[str, ...]] = []
    start = 0
    for index in range(shards):
        end = start + size + (1 if index < extra else 0)
        out.append(tuple(pairs[start:end]))
        start = end
    return tuple(out)


@attrs.frozen(kw_only=True)
class NodeOffer:
    """A live node and the resources it offers in total (Ray's ``ray.nodes()``)."""

    node_id: str
    host: str
    resources: Mapping[str, float] = attrs.field(hash=False)


def shard_needs(cpus: float, memory_mb: float,
                resources: Iterable[tuple[str, float]]) -> dict[str, float]:
    """A shard's resource request, in Ray's names (memory in bytes)."""
    need = dict(resources)
    if cpus:
        need["CPU"] = cpus
    if memory_mb:
        need["memory"] = memory_mb * 1024 * 1024
    return need


def offers(node: NodeOffer, need: Mapping[str, float]) -> bool:
    return all(node.resources.get(name, 0.0) >= amount for name, amount in need.items())


def unmet(nodes: Sequence[NodeOffer], need: Mapping[str, float]) -> str:
    """Why no node can host a shard ("" if one can): what is asked and what the best offer
    of each resource is."""
    if any(offers(node, need) for node in nodes):
        return ""
    asked = ", ".join(f"{k}={_amount(k, v)}" for k, v in sorted(need.items()))
    best = ", ".join(f"{k}={_amount(k, max((n.resources.get(k, 0.0) for n in nodes), default=0))}"
                     for k in sorted(need))
    return (f"a shard needs {asked}, but no node of the cluster's {len(nodes)} offers that "
            f"(the most any node offers: {best})")


def _amount(name: str, value: float) -> str:
    return f"{value / 2**20:g}MB" if name == "memory" else f"{value:g}"


def room(node: NodeOffer, need: Mapping[str, float]) -> int:
    """How many shards needing ``need`` the node holds in total."""
    if not offers(node, need):
        return 0
    wanted = [(k, v) for k, v in need.items() if v > 0]
    if not wanted:
        return 1_000_000
    return min(int(node.resources.get(k, 0.0) // v) for k, v in wanted)


def pick_node(nodes: Sequence[NodeOffer], need: Mapping[str, float], *,
              avoid: Iterable[str] = (), load: Mapping[str, int] | None = None) -> str | None:
    """The node for a shard placed again: one with room left for it after the ``load``
    (shards per node, those being placed included), not in ``avoid`` (where its predecessor
    died) unless no other has room, hosting the fewest shards. None: no node has room."""
    avoided = set(avoid)
    counts = load or {}
    able = [n for n in nodes if room(n, need) > counts.get(n.node_id, 0)]
    preferred = [n for n in able if n.node_id not in avoided] or able
    if not preferred:
        return None
    return min(preferred, key=lambda n: (counts.get(n.node_id, 0), n.node_id)).node_id


class ShardFence:
    """The current generation of each shard: a batch from an older one is refused.

    A shard the head has given up on (dead, unreachable, cut off) may still be running on the
    far side of a partition. Its next batch names its old generation, and nothing in it reaches
    risk, execution or state. The pairs it hosted are fenced at risk and state as well, one
    generation up, before their new shard starts: a proposal that slipped through in the
    instant of the switch is refused there.
    """

    def __init__(self, shards: int) -> None:
        self._current = [0] * shards
        self.refused_batches = 0
        self.refused_proposals = 0

    def current(self, index: int) -> int:
        return self._current[index]

    def advance(self, index: int) -> int:
        """Move shard ``index`` to its next generation; returns it."""
        self._current[index] += 1
        return self._current[index]

    def admits(self, index: int, generation: int, proposals: int = 0) -> bool:
        """True for the shard's current generation; else count and log the refusal."""
        if generation == self._current[index]:
            return True
        self.refused_batches += 1
        self.refused_proposals += proposals
        logger.warning("shard {}: refused a batch of generation {} (current {}){}", index,
                       generation, self._current[index],
                       f" with {proposals} proposal(s)" if proposals else "")
        return False

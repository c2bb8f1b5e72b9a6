"""The event stream: numbered events, a fill seen within 100 ms, reconnects that lose nothing,
a gap reported to a client that fell too far behind; the journal it reads."""

from __future__ import annotations

import http.client
import json
import threading
import time
from urllib.parse import urlsplit

from actors.messages import OrderFilled, PairAdded, Ping
from supervision.api.journal import EventJournal
from tests.helpers import eventually
from tests.supervision.api.serving import TOKEN, serving


class StreamReader:
    """Reads server-sent events on a thread: (received at perf_counter, event, data)."""

    def __init__(self, base_url: str, *, after: int | None = None, last: int | None = None,
                 last_event_id: int | None = None) -> None:
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        query = "&".join(f"{k}={v}" for k, v in (("after", after), ("last", last))
                         if v is not None)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", "/api/v1/events" + (f"?{query}" if query else ""),
                          headers=headers)
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        assert self.response.getheader("content-type").startswith("text/event-stream")
        self.items: list[tuple[float, str, dict]] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        kind, data = "message", []
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    with self.lock:
                        self.items.append((time.perf_counter(), kind, json.loads("".join(data))))
                    kind, data = "message", []
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            # closed under the reader (AttributeError: http.client after close)
            return

    def of(self, kind: str) -> list[dict]:
        with self.lock:
            return [d for _, k, d in self.items if k == kind]

    def seqs(self) -> list[int]:
        with self.lock:
            return [d["seq"] for _, k, d in self.items if "seq" in d and k not in ("hello",)]

    def close(self) -> None:
        self.conn.close()


def served_last_seq(base_url: str) -> int:
    """The newest event the API process holds (its copy of the journal lags the trading
    process's by up to ``supervision.api.process.FORWARD_EVERY_S``): the stream's hello."""
    reader = StreamReader(base_url)
    try:
        eventually(lambda: reader.of("hello"), 5, "the stream's hello")
        return int(reader.of("hello")[0]["last_seq"])
    finally:
        reader.close()


def test_a_client_sees_each_fill_within_100_ms_of_the_event(tmp_path, monkeypatch):
    """Fill events as published (in-process) against their arrival over HTTP."""
    with serving(tmp_path, monkeypatch) as (system, _, _):
        published: dict[str, float] = {}

        def stamp(event: object) -> None:
            if isinstance(event, OrderFilled):
                published[event.fill.fill_id] = time.perf_counter()

        system.subscribe(stamp)
        reader = StreamReader(system.api_url)
        eventually(lambda: len(reader.of("fill")) >= 6, 30, "six fills on the stream")
        reader.close()
        with reader.lock:
            arrived = {d["event"]["fill"]["fill_id"]: at for at, k, d in reader.items
                       if k == "fill"}
    delays = [arrived[f] - published[f] for f in arrived if f in published]
    assert len(delays) >= 6
    print(f"fill delays (ms): {[round(d * 1000, 2) for d in sorted(delays)]}")
    assert max(delays) < 0.100, f"fill delays (s): {sorted(delays)}"


def test_reconnecting_with_the_last_sequence_number_loses_nothing(tmp_path, monkeypatch):
    """Read a while, drop the connection, let events pass, reconnect with Last-Event-ID: the
    numbers continue without a hole and match the journal's."""
    with serving(tmp_path, monkeypatch) as (system, _, _):
        first = StreamReader(system.api_url, last=0)
        eventually(lambda: len(first.seqs()) >= 5, 30, "five events")
        first.close()
        seen = first.seqs()
        last = seen[-1]
        eventually(lambda: system.journal.last_seq >= last + 10, 30, "events while away")
        second = StreamReader(system.api_url, last_event_id=last)
        eventually(lambda: len(second.seqs()) >= 10, 30, "the missed events")
        second.close()
        resumed = second.seqs()
        hello = second.of("hello")[0]
    assert not second.of("gap")
    assert hello["from"] == last
    assert resumed[0] == last + 1
    assert resumed == list(range(last + 1, last + 1 + len(resumed)))
    assert seen == list(range(seen[0], last + 1))


def test_a_client_further_behind_than_the_journal_keeps_is_told_what_it_missed(
        tmp_path, monkeypatch):
    """With five events kept, ?after=0 once more have passed gets a gap event first."""
    with serving(tmp_path, monkeypatch, api={"event_replay": 5}) as (system, _, _):
        eventually(lambda: system.journal.last_seq >= 12, 30, "a dozen events")
        eventually(lambda: served_last_seq(system.api_url) >= 12, 10,
                   "the API process to have them too")
        reader = StreamReader(system.api_url, after=0)
        eventually(lambda: reader.of("gap"), 10, "a gap")
        gap = reader.of("gap")[0]
        eventually(lambda: len(reader.seqs()) >= 5, 10, "the kept events")
        reader.close()
    assert gap["missed"] >= 7
    assert reader.seqs()[0] == gap["missed"] + 1


def test_status_snapshots_come_on_the_stream(tmp_path, monkeypatch):
    """A status event with both pairs arrives about every second."""
    with serving(tmp_path, monkeypatch, api={"status_interval_s": 0.2}) as (system, _, _):
        reader = StreamReader(system.api_url)
        eventually(lambda: len(reader.of("status")) >= 2, 10, "two snapshots")
        reader.close()
    status = reader.of("status")[-1]
    assert {p["pair"] for p in status["pairs"]} == {"BTC/USDT", "ETH/USDT"}


# -- the journal ----------------------------------------------------------------------------


def test_the_journal_numbers_kept_kinds_and_reports_what_fell_out():
    """Unknown kinds are not kept; since() gives what follows a number and what was lost."""
    journal = EventJournal(capacity=3)
    woken = []
    stop = journal.listen(lambda seq, event: woken.append(seq))
    journal.record(Ping())  # not a kind clients see
    for n in range(5):
        journal.record(PairAdded(pair=f"P{n}/USDT", strategy="x"))
    stop()
    journal.record(PairAdded(pair="Q/USDT", strategy="x"))
    assert woken == [1, 2, 3, 4, 5]
    entries, missed = journal.since(0)
    assert [seq for seq, _ in entries] == [4, 5, 6] and missed == 3
    entries, missed = journal.since(4)
    assert [seq for seq, _ in entries] == [5, 6] and missed == 0
    assert journal.since(6) == ([], 0)
    assert journal.since(4, limit=1)[0][0][0] == 5

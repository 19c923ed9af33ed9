"""Wrong operator passwords, counted per client: guessing slows to a crawl.

A pure class (no Streamlit, an injectable clock) so tests drive time without sleeping. One
instance serves every session of the web app's server process (:data:`gate.LOGIN_THROTTLE`):
a client that opens a new browser session starts with its old count.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Record:
    failures: int
    until: float  # no try is checked before this moment
    last: float  # the last failure, for forgetting


class Throttle:
    """After ``free`` wrong tries a client waits ``base`` seconds before the next one is
    checked, twice as long after each further wrong try, at most ``ceiling``. A try made
    while waiting is refused without being checked (so a right guess then opens nothing
    and tells nothing). A right try clears the client's count; ``forget`` seconds after
    its last wrong try a client starts afresh. At most ``max_clients`` are remembered (the
    longest quiet are dropped first), so many addresses cannot fill the memory."""

    def __init__(self, *, free: int = 5, base: float = 2.0, ceiling: float = 300.0, forget: float = 3600.0,
                 max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.base, self.ceiling, self.forget = free, base, ceiling, forget
        self.max_clients = max_clients
        self.clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()  # sessions run in threads of one process

    def wait(self, client: str) -> float:
        """Seconds before ``client``'s next try will be checked (0: now)."""
        now = self.clock()
        with self._lock:
            record = self._current(client, now)
            return max(0.0, record.until - now) if record else 0.0

    def failed(self, client: str) -> float:
        """Count a wrong try; returns the seconds the client now waits."""
        now = self.clock()
        with self._lock:
            record = self._current(client, now) or _Record(0, now, now)
            record.failures += 1
            record.last = now
            over = record.failures - self.free
            record.until = now + (min(self.ceiling, self.base * 2 ** (over - 1)) if over > 0 else 0.0)
            self._records[client] = record
            self._records.move_to_end(client)
            while len(self._records) > self.max_clients:
                self._records.popitem(last=False)
            return record.until - now

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._records.pop(client, None)

    def _current(self, client: str, now: float) -> _Record | None:
        record = self._records.get(client)
        if record is not None and now - record.last > self.forget and now >= record.until:
            del self._records[client]
            return None
        return record


def client_key(address: object) -> str:
    """Whom a try is counted against: the client's address, an IPv6 address by its /64
    (one home or host holds a whole /64), ``loopback`` when Streamlit gives no address
    (it gives none for 127.0.0.1 and ::1, so every local client shares one count), or
    anything but an address (a test harness's stand-in)."""
    if not isinstance(address, str) or not address:
        return "loopback"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)

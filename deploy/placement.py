"""Where each process of the stack runs: the address it binds to and advertises, and the host (network namespace)."""

from __future__ import annotations

from dataclasses import dataclass

from deploy.services import DEFAULT_CLIENT_HOSTS, DEFAULT_HOST, Service

LOCAL_NETNS = None   # a spot on this machine's own network, not in a deploy.netns host


@dataclass(frozen=True)
class Spot:
    """One host as a process sees it: the address it listens on and gives to others, and the network namespace
    it runs in (None: this machine's own network)."""

    address: str
    netns: str | None = LOCAL_NETNS

    def __post_init__(self) -> None:
        if not isinstance(self.address, str) or not self.address:
            raise ValueError(f"a spot needs an address, got {self.address!r}")
        if self.netns is not None and (not isinstance(self.netns, str) or not self.netns):
            raise ValueError(f"netns must be None or a namespace name, got {self.netns!r}")

    def place(self, svc: Service) -> Service:
        """``svc`` set to run on this host (a service with a port was built with this spot's address)."""
        if svc.port is not None and svc.host != self.address:
            raise ValueError(f"{svc.name} listens on {svc.host}, not on this spot's {self.address}")
        svc.netns = self.netns
        return svc


@dataclass(frozen=True)
class Placement:
    """The stack's hosts by role: ``data`` (the broker and HBase), ``db`` (MariaDB and both APIs), ``producer``,
    one spot per faust worker, and ``monitoring`` (Prometheus and the dashboard); ``client_hosts`` are the MySQL
    host patterns the application user may connect from."""

    data: Spot
    db: Spot
    producer: Spot
    workers: tuple[Spot, ...]
    monitoring: Spot
    client_hosts: tuple[str, ...] = DEFAULT_CLIENT_HOSTS

    def __post_init__(self) -> None:
        if not self.workers:
            raise ValueError("a placement needs at least one worker spot")

    @classmethod
    def local(cls, workers: int, host: str = DEFAULT_HOST) -> Placement:
        """Everything on this machine, on ``host`` (the local stack)."""
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive int, got {workers!r}")
        spot = Spot(host)
        return cls(data=spot, db=spot, producer=spot, workers=(spot,) * workers, monitoring=spot)

    @property
    def is_local(self) -> bool:
        """True when every process runs on this machine's own network."""
        spots = (self.data, self.db, self.producer, *self.workers, self.monitoring)
        return all(spot.netns is None for spot in spots)

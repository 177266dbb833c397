"""When batches leave, and how long a worker may hold one: the send side's rules, as plain arithmetic."""


def full_batches_formed(before: int, after: int, count: int) -> int:
    """How many more full batches of `count` wait after the outbox grew from `before` to `after` events."""
    return after // count - before // count


def overdue(size: int, oldest_age: float, period: float) -> bool:
    """Whether events wait that should have left: a batch leaves when `count` events wait (a send
    task is asked for each full batch as it forms), or else when its oldest event has waited `period`."""
    return size > 0 and oldest_age >= period


def lease_seconds(timeout: float) -> float:
    """How long a batch stays with its worker without a sign of life before another worker takes it over.

    The worker renews the lease before each request, and `timeout` is the whole request's deadline
    (deadline.py; through a proxy of the environment, httpx's transport bounds each of connect, write
    and read by it instead); the lease outlasts three of them with room to spare, so that a slow but
    living worker never has its batch sent by another one at the same time.
    """
    return 3 * timeout + 5


def still_fresh(lease: float) -> float:
    """For how long after a lease (of a batch, or of an in-flight slot) was set its renewal before a request
    can be left out: 1s, or 1/20 of a shorter lease. Leases are lease_seconds(timeout), so one set that
    recently still outlasts the longest request, and no other worker can have taken it over since."""
    return min(1.0, lease / 20)


def sweep_interval(period: float) -> float:
    """How often a send worker looks for batches due again and for events that waited `period`."""
    return min(0.5, max(0.05, period / 4))

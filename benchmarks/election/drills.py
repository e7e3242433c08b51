"""The fault drills of the night, each at its minute: a delivery worker killed with SIGKILL while
it sends, Redis restarted, PostgreSQL restarted, the snapshot worker killed. Killed services
come back by the stack's supervisor, as compose's restart policy brings back a container."""

import threading
import time
from dataclasses import dataclass

from benchmarks.election.stack import ClusterPostgres, Stack

DRILLS = ("kill-worker", "restart-redis", "restart-postgres", "kill-snapshot-worker")
# Where each falls by default, as a share of --minutes: spread over the night, none at its ends.
DEFAULT_SHARES = {
    "kill-worker": 0.2,
    "restart-redis": 0.4,
    "restart-postgres": 0.6,
    "kill-snapshot-worker": 0.8,
}


@dataclass(frozen=True)
class Drill:
    name: str
    minute: float


class DrillRunner(threading.Thread):
    def __init__(self, stack: Stack, drills: list[Drill], start: float, down: float) -> None:
        super().__init__(name="drills", daemon=True)
        self.stack, self.start_at, self.down = stack, start, down
        self.drills = sorted(drills, key=lambda drill: drill.minute)
        self.stopping = threading.Event()

    def run(self) -> None:
        for drill in self.drills:
            if self.stopping.wait(max(0.0, self.start_at + drill.minute * 60 - time.time())):
                return
            getattr(self, drill.name.replace("-", "_"))()

    def kill_worker(self) -> None:
        sending = _wait_sending()
        self.stack.services["worker"].kill()
        self.stack.note(f"drill: worker killed with SIGKILL ({sending} uploads being sent)")

    def restart_redis(self) -> None:
        started = time.monotonic()
        self.stack.redis.restart(self.down)
        self.stack.note(f"drill: Redis restarted ({time.monotonic() - started:.1f} s down)")

    def restart_postgres(self) -> None:
        postgres = self.stack.postgres
        if isinstance(postgres, ClusterPostgres) and not postgres.restartable:
            self.stack.note("drill: PostgreSQL restart skipped (DATABASE_URL, no --pg-cluster)")
            return
        started = time.monotonic()
        postgres.restart(self.down)
        self.stack.note(f"drill: PostgreSQL restarted ({time.monotonic() - started:.1f} s down)")

    def kill_snapshot_worker(self) -> None:
        self.stack.services["snapshot-worker"].kill()
        self.stack.note("drill: snapshot worker killed with SIGKILL")


def _wait_sending(seconds: float = 5.0) -> int:
    """Uploads being sent now, waiting up to `seconds` for one: the kill comes mid-delivery."""
    from django.db import DatabaseError, connection

    from uploads.models import Status, Upload

    deadline = time.monotonic() + seconds
    sending = 0
    try:
        while time.monotonic() < deadline:
            sending = Upload.objects.filter(status=Status.SENDING).count()
            if sending:
                break
            time.sleep(0.02)
    except DatabaseError:
        pass
    finally:
        connection.close()
    return sending

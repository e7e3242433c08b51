"""The Celery app. Its settings are the CELERY_* block of settings.py, each line commented there."""

import logging
import os
from contextlib import contextmanager

import redis
from celery import Celery, signals
from django.db import close_old_connections
from kombu.transport import redis as kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sirekap_tracker.settings")

app = Celery("sirekap_tracker", include=["sirekap_tracker.health"])
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _settings_or_exit(**kwargs) -> None:
    # Celery reads its configuration (our Django settings) while it parses its command line; load
    # them first ourselves, so that a bad or unreachable DATABASE_URL or REDIS_URL reads as one
    # line instead of a traceback or a worker reconnecting forever.
    from sirekap_tracker.config import load_settings_or_exit

    load_settings_or_exit(check_services=False)
    app.config_from_object(_celery_settings(), namespace="CELERY")


def _celery_settings() -> dict:
    """The CELERY_* settings as a dict, read by Celery instead of Django's settings object.

    Celery reads a setting by attribute some seven times for every task sent, and one our
    settings leave to Celery's default is first asked of the object under four spellings, each
    through two layers of __getattr__ and an exception: about 20 µs a name, as much as kombu's
    whole publish. A dict answers the same (settings do not change once loaded) at a dict's
    price. Called while Celery configures itself (on_configure, above), which then reads it.
    """
    from django.conf import settings

    return {name: getattr(settings, name) for name in dir(settings) if name.startswith("CELERY_")}


@signals.worker_init.connect
@signals.beat_init.connect
def _services_or_exit(**kwargs) -> None:
    # Checked as a worker or beat starts rather than on every configure, so that a web process
    # sending a task during a database outage gets an error for that request, not an exit.
    from sirekap_tracker.config import load_settings_or_exit

    load_settings_or_exit(check_services=True)


@signals.worker_init.connect
def _warm(**kwargs) -> None:
    # Before the pool starts: a prefork pool's children inherit it all built and frozen (and a
    # frozen object is never written by the collector, so its page stays shared); a thread
    # pool's tasks run in this process.
    from sirekap_tracker.warm import process_warm

    process_warm("celery worker")


def _add_worker_steps() -> None:
    # Imported here, not at the top: they import Django's settings, which this module must not
    # touch at import time (the Celery command line loads them in _settings_or_exit, above).
    from django_structlog.celery.steps import DjangoStructLogInitStep

    from sirekap_tracker.health import WorkerHeartbeat

    app.steps["worker"].add(WorkerHeartbeat)
    # Binds the request id (and the rest a request bound) carried in a task's headers for the
    # lines the task logs.
    app.steps["worker"].add(DjangoStructLogInitStep)


_add_worker_steps()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _database_connections_as_requests(**kwargs) -> None:
    # As Django does around a request: a connection past CONN_MAX_AGE, or one that failed, is
    # closed; the others are kept for the next task of this thread (CELERY_DB_REUSE_MAX).
    close_old_connections()


@signals.setup_logging.connect
def _keep_our_logging(**kwargs) -> None:
    # Django's LOGGING (settings.py, sirekap_tracker/logs.py) already formats every line: JSON or
    # text, with the request and task ids. A receiver here keeps Celery from adding its own
    # handlers and format beside it; LOG_LEVEL, not --loglevel, sets the level.
    pass


def _survive_losing_redis_with_unacked_messages() -> None:
    """Keeps the worker alive when Redis goes away while it holds an unacknowledged message.

    kombu 5.7 then (1) closes the channel and tries to put the message back through a
    connection that is already gone, and (2) once reconnected, acknowledges the finished task on
    that dead channel. Either raises an AttributeError (or a ConnectionError) that ends the
    worker as an "Unrecoverable error" (seen in tests/test_pipeline.py's Redis outage). Nothing
    is lost if we skip those steps: the message stays in Redis's unacked set and comes back after
    the visibility timeout, where running it again does nothing (the upload's state moved on),
    and the sweeper rings for any upload still due (PostgreSQL is the source of truth). So the
    worker logs it and carries on instead of dying.
    """
    logger = logging.getLogger(__name__)
    qos = kombu_redis.QoS
    original_restore, original_ack = qos.restore_unacked, qos.ack

    def restore_unacked(self, client=None):
        try:
            return original_restore(self, client)
        except (AttributeError, redis.ConnectionError, OSError) as error:
            logger.warning("unacked messages left in Redis for later (%r)", error)
            return None

    def ack(self, delivery_tag):
        try:
            return original_ack(self, delivery_tag)
        except AttributeError as error:
            logger.warning("ack on a channel lost with Redis skipped (%r)", error)
            return None

    # A patch of kombu's class, on purpose (see above): typed checkers call it a method assign.
    qos.restore_unacked, qos.ack = restore_unacked, ack  # type: ignore[method-assign]


_survive_losing_redis_with_unacked_messages()


def _one_redis_client_per_channel() -> None:
    """Keeps one redis-py client per kombu channel instead of building one per command.

    kombu 5.7's Redis channel builds a new `redis.Redis` for every command it sends outside its
    event loop (`Channel.conn_or_acquire`), so for every task a web process sends; building one
    copies redis-py's table of some 170 response callbacks, about a quarter of what sending a
    delivery task costs (docs/performance.md, the intake). A client holds no connection of its
    own: each command takes one from the channel's pool and gives it back, as a new client's
    would, so one client serves every thread and every command alike, a command after an outage
    included (the pool reconnects). It is kept with the pool it was made for: a channel whose
    pool was closed and made again gets a client of the new one.
    """
    channel = kombu_redis.Channel

    @contextmanager
    def conn_or_acquire(self, client=None):
        if client:
            yield client
            return
        pool = self.pool
        kept = self.__dict__.get("_kept_client")
        if kept is None or kept.connection_pool is not pool:
            kept = self._kept_client = self._create_client()
        yield kept

    # A patch of kombu's class, as above.
    channel.conn_or_acquire = conn_or_acquire  # type: ignore[method-assign]


_one_redis_client_per_channel()

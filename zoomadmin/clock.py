"""
Celery's countdowns on the database's clock (issue 13).

A message sent with a countdown (an action handed back while Zoom's evidence is awaited, a
retry's back-off) carries an ETA: a date, made by the sender's clock (`app.now()`), and turned
into a wait by the receiving worker's clock (kombu's timer). Between hosts whose clocks differ,
the wait is off by the difference: a worker five minutes behind held every such message of its
peers five minutes too long (the action's lease ran out meanwhile and it was taken over as if
its worker had died), and the messages of a worker five minutes ahead were held five minutes by
everyone else. So both ends read the one clock every host shares: this host's clock corrected by
its measured offset from PostgreSQL's (`offset()`, asked at most once a minute; 0 with SQLite,
one file on one machine, or when the database cannot be asked).
"""

import logging
import time
from datetime import UTC, datetime

log = logging.getLogger(__name__)

OFFSET_TTL = 60.0  # seconds between two measurements of the offset
SAMPLES = 3  # round trips per measurement: the quickest is used
MIN_OFFSET = 0.5  # seconds: a smaller difference is left alone (NTP keeps hosts closer)
# "frozen": a worker's main process (it reads ETAs) measures once, at start, and then never
# opens a database connection that its forked pool processes would inherit.
_measured = {"offset": 0.0, "at": None, "frozen": False}


def offset():
    """Seconds to add to this host's clock to read the database's (0 when unknown)."""
    at = time.monotonic()
    if _measured["frozen"] or (_measured["at"] is not None and at - _measured["at"] < OFFSET_TTL):
        return _measured["offset"]
    _measured["at"] = at
    try:
        from django.db import connection

        if connection.vendor != "postgresql":
            return 0.0
        samples = []
        with connection.cursor() as cursor:
            for _ in range(SAMPLES):
                before = time.time()
                cursor.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())")
                database = float(cursor.fetchone()[0])
                after = time.time()
                samples.append((after - before, database - (before + after) / 2))
    except Exception as e:
        # A clock we cannot read now (the database restarting): the last offset measured.
        log.debug("the database's clock could not be read: %s", e)
        return _measured["offset"]
    # The quickest answer tells the most; a difference within its round trip (a busy machine,
    # the same clock) is not one this can see, and correcting by noise would be a skew itself:
    # beat's 1 s expiry on the sweeper's messages made early expired them all.
    round_trip, measured = min(samples)
    if abs(measured) <= max(round_trip, MIN_OFFSET):
        measured = 0.0
    if abs(measured - _measured["offset"]) > 1.0:
        log.info(
            "this host's clock is %+.1f s off the database's; countdowns use the database's",
            -measured,
        )
    _measured["offset"] = measured
    return measured


def now():
    """Now on the database's clock, as an aware UTC datetime (Celery's `app.now`)."""
    return datetime.fromtimestamp(epoch(), UTC)


def epoch():
    """Now on the database's clock, in epoch seconds (kombu's timer converts ETAs with it)."""
    return time.time() + offset()


def install(app):
    """Countdowns become ETAs (sending) and ETAs waits (receiving) on the database's clock."""
    from kombu.asynchronous import timer

    def app_now():
        return now().astimezone(app.timezone)

    app.now = app_now
    timer._time = epoch

    from celery.signals import worker_init, worker_process_init

    worker_init.connect(_measure_once, weak=False)
    worker_process_init.connect(_measure_when_used, weak=False)


def _measure_once(**kwargs):
    """A worker's main process: measure now, then keep it (see `_measured`)."""
    from django.db import connection

    _measured["at"] = None
    offset()
    _measured["frozen"] = True
    connection.close()


def _measure_when_used(**kwargs):
    """A pool process: measure again, on its own connection, when first needed."""
    _measured["frozen"] = False
    _measured["at"] = None

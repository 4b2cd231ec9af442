"""
Which encryption keys the running processes hold, so FIELD_ENCRYPTION_KEY is rotated in phases
that survive a rolling deploy.

A secret encrypted with a key some process cannot read is lost to that process: during a rolling
deploy that put a new key first, a worker refreshing an OAuth token encrypted it under the new
key, and every process still on the old list failed with ZoomCredentialsUnreadable (issue 13).
The safe order, each step deployed everywhere before the next:

1. accept the new key for reading: FIELD_ENCRYPTION_KEY=old,new (still encrypting with old);
2. encrypt with it: FIELD_ENCRYPTION_KEY=new,old;
3. re-encrypt what is stored: `manage.py rotate_encryption_key`;
4. drop the old key: FIELD_ENCRYPTION_KEY=new.

Each web and worker process reports the fingerprints of its key list (`report`, never the keys)
in KeyHolder rows; `rotate_encryption_key --status` reads them (`plan`) and says which step is
safe now, and the re-encryption refuses while a live process cannot read the key it would use.
"""

import atexit
import hashlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db.models.functions import Now

log = logging.getLogger(__name__)

# A process reports itself this often; one not heard from for STALE_AFTER is gone.
REPORT_EVERY_SECONDS = 300
STALE_AFTER = timedelta(seconds=3 * REPORT_EVERY_SECONDS)

_last_report = None


def fingerprint(key):
    """A short, one-way name for a key: enough to tell keys apart, useless to decrypt."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def own_fingerprints():
    return [fingerprint(k) for k in settings.FIELD_ENCRYPTION_KEYS]


_registered_exit = set()


def _forget(process):
    from .models import KeyHolder

    try:
        KeyHolder.objects.filter(process=process).delete()
    except Exception:
        log.debug("could not remove %s's key report", process, exc_info=True)


def report(kind):
    """Record this process's key list (kind: web or worker), on the database's clock. A
    process that exits cleanly removes its row (a restarted process does not hold a rotation
    back for STALE_AFTER); one that dies is forgotten once its row is stale."""
    from .models import KeyHolder

    reads = own_fingerprints()
    process = f"{kind}:{socket.gethostname()}:{os.getpid()}"[:255]
    if process not in _registered_exit:
        _registered_exit.add(process)
        atexit.register(_forget, process)
    KeyHolder.objects.update_or_create(
        process=process,
        defaults={
            "kind": kind,
            "reads": ",".join(reads),
            "writes": reads[0],
            "last_seen": Now(),
        },
    )


def report_now_and_then(kind):
    """`report`, at most every REPORT_EVERY_SECONDS per process; never raises (a process that
    cannot report still serves, and shows as gone in the plan after a while)."""
    global _last_report
    if _last_report is not None and time.monotonic() - _last_report < REPORT_EVERY_SECONDS:
        return
    _last_report = time.monotonic()
    try:
        report(kind)
    except DatabaseError:
        log.warning("could not report this process's encryption keys", exc_info=True)


def forget_reports():
    """Let the next `report_now_and_then` report at once (tests; a process after fork)."""
    global _last_report
    _last_report = None


@dataclass
class Plan:
    """What the live processes hold, and the next safe step of a rotation."""

    holders: list
    keys: list  # this process's fingerprints, in its order
    stored: dict  # fingerprint -> secrets stored under it ("?" for no configured key)
    step: int = 0
    advice: str = ""
    blocked: list = field(default_factory=list)  # processes that cannot read our first key

    def lines(self):
        out = [f"{len(self.holders)} live process(es) reported their keys:"]
        out += [f"  {h.process}: encrypts with {h.writes}, reads {h.reads}" for h in self.holders]
        out.append("This process's keys (FIELD_ENCRYPTION_KEY, in order):")
        for n, key in enumerate(self.keys, 1):
            readers = sum(key in h.reads.split(",") for h in self.holders)
            writers = sum(h.writes == key for h in self.holders)
            out.append(
                f"  {n}. {key}: read by {readers} of {len(self.holders)}, encrypted with by "
                f"{writers}, {self.stored.get(key, 0)} secret(s) stored under it"
            )
        if self.stored.get("?"):
            out.append(f"  {self.stored['?']} secret(s) no configured key can read")
        out.append(f"Next safe step: {self.advice}")
        return out


def _stored_by_key(keys):
    """How many stored secrets each configured key encrypted (the first key that reads it)."""
    from cryptography.fernet import Fernet, InvalidToken
    from django.db.models import TextField
    from django.db.models.functions import Cast

    from .fields import encrypted_fields

    fernets = [(fp, Fernet(k)) for fp, k in zip(keys, settings.FIELD_ENCRYPTION_KEYS, strict=True)]
    counts = dict.fromkeys(keys, 0)
    for model, fields in encrypted_fields():
        for f in fields:
            raw = (
                model._default_manager.exclude(**{f.name: ""})
                .exclude(**{f"{f.name}__isnull": True})
                .annotate(_raw=Cast(f.name, output_field=TextField()))
                .values_list("_raw", flat=True)
            )
            for token in raw.iterator():
                for fp, one in fernets:
                    try:
                        one.decrypt(token.encode())
                    except (InvalidToken, ValueError):
                        continue
                    counts[fp] += 1
                    break
                else:
                    counts["?"] = counts.get("?", 0) + 1
    return counts


def plan():
    """The live processes' keys and the next safe step towards this process's first key: run
    it with the list you are moving to, the new key first (FIELD_ENCRYPTION_KEY=new,old)."""
    from .models import KeyHolder

    holders = list(KeyHolder.objects.filter(last_seen__gte=Now() - STALE_AFTER))
    keys = own_fingerprints()
    result = Plan(holders=holders, keys=keys, stored=_stored_by_key(keys))
    unread = {key: [h.process for h in holders if key not in h.reads.split(",")] for key in keys}
    result.blocked = unread[keys[0]]
    writers = {h.writes for h in holders} | {keys[0]}
    missing = {k: p for k, p in unread.items() if p}
    if missing:
        key, processes = next(iter(missing.items()))
        result.step = 1
        result.advice = (
            f"1 (accept the key for reading). {len(processes)} live process(es) cannot read key "
            f"{key}: {', '.join(processes)}. Deploy a FIELD_ENCRYPTION_KEY that lists it after "
            "the key they encrypt with (old,new) to every process, and wait for them to report "
            f"(every {REPORT_EVERY_SECONDS // 60} min), before any process encrypts with it."
        )
    elif len(writers) > 1:
        result.step = 2
        others = sorted(writers - {keys[0]})
        result.advice = (
            f"2 (encrypt with the new key). Every live process reads {keys[0]}, but some "
            f"encrypt with {', '.join(others)}: put {keys[0]} first in FIELD_ENCRYPTION_KEY "
            "everywhere."
        )
    elif any(result.stored.get(k) for k in keys[1:]):
        result.step = 3
        result.advice = (
            f"3 (re-encrypt). Every live process encrypts with {keys[0]}: run "
            "`manage.py rotate_encryption_key` to move what is stored under the older keys."
        )
    elif len(keys) > 1:
        result.step = 4
        result.advice = (
            f"4 (drop the old key). Nothing is stored under {', '.join(keys[1:])} and no live "
            "process encrypts with it: remove it from FIELD_ENCRYPTION_KEY everywhere, keeping "
            f"the key whose fingerprint is {keys[0]}."
        )
    else:
        result.advice = "none: one key, every secret under it. A rotation starts at step 1."
    return result

"""Rotating FIELD_ENCRYPTION_KEY in four steps that survive a rolling deploy: processes holding
different key lists report them, `rotate_encryption_key --status` names the next safe step, and
the re-encryption refuses while a live process could not read what it would write (issue 13:
a process with only the old key could not read a token another had refreshed under the new)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from meetings import keyring
from meetings.models import KeyHolder, ZoomAccount
from tests.fixtures.worker import database_url

ROOT = Path(__file__).resolve().parent.parent
OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


def other_process_reports(*keys):
    """A worker of the rolling deploy, restarted with FIELD_ENCRYPTION_KEY=KEYS: its earlier
    process removed its report as it stopped, and the new one (a separate process, running on:
    it leaves without the clean exit's removal) reports its key list, as its heartbeat does."""
    KeyHolder.objects.filter(kind="worker").delete()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "PYTEST_"))}
    env.update(
        DATABASE_URL=database_url(),
        FIELD_ENCRYPTION_KEY=",".join(keys),
        DEBUG="true",
        DJANGO_SETTINGS_MODULE="zoomadmin.settings",
    )
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "import os; from meetings import keyring; keyring.report('worker'); os._exit(0)",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


def status():
    from io import StringIO

    out = StringIO()
    call_command("rotate_encryption_key", "--status", stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_rotation_walks_through_its_four_steps_with_two_processes_holding_different_keys(
    settings,
):
    new, old = keyring.fingerprint(NEW), keyring.fingerprint(OLD)
    # given secrets stored under the old key, and a worker process that holds only the old key
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    account = ZoomAccount.objects.create(
        name="Acme", kind="server_to_server", client_id="id", client_secret="s3cret-client"
    )
    other_process_reports(OLD)
    # the operator asks with the list they are moving to: the new key first
    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]

    # step 1: the worker cannot read the new key: accept it for reading first; no re-encryption
    said = status()
    assert "Next safe step: 1 (accept the key for reading)" in said
    assert f"cannot read key {new}" in said and "worker:" in said
    with pytest.raises(CommandError, match="cannot read the key this would encrypt with"):
        call_command("rotate_encryption_key")
    assert KeyHolder.objects.get().reads == old  # fingerprints only, never a key
    assert OLD not in said and NEW not in said

    # step 2: the worker reads both, still encrypting with the old key: put the new one first
    other_process_reports(OLD, NEW)
    assert f"Next safe step: 2 (encrypt with the new key). Every live process reads {new}" in (
        status()
    )

    # step 3: every process encrypts with the new key: re-encrypt what is stored
    other_process_reports(NEW, OLD)
    assert "Next safe step: 3 (re-encrypt)" in status()
    call_command("rotate_encryption_key", stdout=open(os.devnull, "w"))  # noqa: SIM115

    # step 4: nothing under the old key, nobody encrypts with it: drop it
    said = status()
    assert f"Next safe step: 4 (drop the old key). Nothing is stored under {old}" in said
    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    account.refresh_from_db()
    assert account.client_secret == "s3cret-client"


@pytest.mark.django_db(transaction=True)
def test_a_process_not_heard_from_for_a_while_no_longer_holds_a_rotation_back(settings):
    from datetime import timedelta

    from django.utils.timezone import now

    other_process_reports(OLD)
    KeyHolder.objects.update(last_seen=now() - keyring.STALE_AFTER - timedelta(seconds=5))
    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]

    assert "0 live process(es)" in status()
    call_command("rotate_encryption_key", stdout=open(os.devnull, "w"))  # noqa: SIM115


def test_web_and_worker_processes_report_their_keys(client, db, settings):
    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    keyring.forget_reports()

    client.get("/healthz")

    (holder,) = KeyHolder.objects.filter(kind="web")
    assert holder.reads == f"{keyring.fingerprint(NEW)},{keyring.fingerprint(OLD)}"
    assert holder.writes == keyring.fingerprint(NEW)
    keyring.forget_reports()

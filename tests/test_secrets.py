"""Secrets at rest: Fernet-encrypted, rotatable, and a wrong key is a clear error, not a crash."""

import io
import logging
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils.timezone import now

from meetings.fields import is_undecryptable
from meetings.models import ZoomAccount
from meetings.zoom import oauth
from meetings.zoom.errors import ZoomNeedsReconnect
from meetings.zoom.oauth import ZoomCredentialsUnreadable, client_for_account
from meetings.zoom.sandbox import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_OAUTH_CLIENT_ID,
    DEFAULT_S2S_CLIENT_ID,
)
from meetings.zoom.sandbox import DEFAULT_OAUTH_CLIENT_SECRET as OAUTH_SECRET
from meetings.zoom.sandbox import DEFAULT_S2S_CLIENT_SECRET as S2S_SECRET
from tests.test_oauth import connect_through_zoom

SECRET = "s2s-client-secret-0123456789"
ACCESS = "access-token-abcdefghijklmnop"
REFRESH = "refresh-token-qrstuvwxyz012345"


@pytest.fixture
def old_key():
    return Fernet.generate_key().decode()


@pytest.fixture
def new_key():
    return Fernet.generate_key().decode()


@pytest.fixture
def account(db, settings, old_key):
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    return ZoomAccount.objects.create(
        name="Acme",
        kind=ZoomAccount.Kind.OAUTH,
        zoom_account_id="acct-1",
        client_id="client-1",
        client_secret=SECRET,
        access_token=ACCESS,
        refresh_token=REFRESH,
    )


def raw_row(pk):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_secret, access_token, refresh_token FROM meetings_zoomaccount "
            "WHERE id = %s",
            [pk],
        )
        return cursor.fetchone()


def test_secrets_are_stored_as_ciphertext_and_read_back_in_clear(account):
    row = raw_row(account.pk)
    for stored, clear in zip(row, (SECRET, ACCESS, REFRESH), strict=True):
        assert stored and clear not in stored
        assert stored.startswith("gAAAAA")  # a Fernet token
    fresh = ZoomAccount.objects.get(pk=account.pk)
    assert (fresh.client_secret, fresh.access_token, fresh.refresh_token) == (
        SECRET,
        ACCESS,
        REFRESH,
    )


def test_empty_secrets_stay_empty(db, settings, old_key):
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    account = ZoomAccount.objects.create(name="Empty", kind="oauth", client_id="c")
    assert raw_row(account.pk) == ("", "", "")


def test_a_key_list_with_the_new_key_first_reads_old_secrets_and_writes_new_ones(
    account, settings, old_key, new_key
):
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    fresh = ZoomAccount.objects.get(pk=account.pk)
    assert fresh.client_secret == SECRET
    fresh.access_token = "another-access-token-000"
    fresh.save(update_fields=["access_token"])
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert ZoomAccount.objects.get(pk=account.pk).access_token == "another-access-token-000"


def test_rotate_encryption_key_moves_every_secret_to_the_newest_key(
    account, settings, old_key, new_key, capsys
):
    # given the new key first, the old one still listed
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    before = raw_row(account.pk)

    # when
    call_command("rotate_encryption_key")

    # then the old key can go
    after = raw_row(account.pk)
    assert all(a != b for a, b in zip(after, before, strict=True))
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    fresh = ZoomAccount.objects.get(pk=account.pk)
    assert (fresh.client_secret, fresh.access_token, fresh.refresh_token) == (
        SECRET,
        ACCESS,
        REFRESH,
    )
    out = capsys.readouterr().out
    assert "3 secret(s) re-encrypted" in out
    assert SECRET not in out and ACCESS not in out


def test_rotate_encryption_key_leaves_rows_already_under_the_newest_key(
    account, settings, old_key, new_key, capsys
):
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_key")
    first = raw_row(account.pk)
    call_command("rotate_encryption_key")
    assert raw_row(account.pk) == first
    assert "0 secret(s) re-encrypted, 3 already under the newest key" in capsys.readouterr().out


def test_rotate_dry_run_changes_nothing(account, settings, old_key, new_key, capsys):
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    before = raw_row(account.pk)
    call_command("rotate_encryption_key", "--dry-run")
    assert raw_row(account.pk) == before
    assert "3 secret(s) would be re-encrypted" in capsys.readouterr().out


def test_rotate_reports_secrets_no_key_can_read_and_leaves_them_alone(account, settings, new_key):
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key was dropped too early
    before = raw_row(account.pk)
    with pytest.raises(CommandError, match="3 secret\\(s\\) could not be decrypted"):
        call_command("rotate_encryption_key")
    assert raw_row(account.pk) == before


def test_a_wrong_key_reads_as_unreadable_not_as_a_crash(account, settings, new_key):
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    fresh = ZoomAccount.objects.get(pk=account.pk)
    assert is_undecryptable(fresh.access_token)
    assert fresh.access_token == ""  # what a page would show
    assert fresh.secrets_unreadable
    assert fresh.token_state == "unreadable"


def test_a_wrong_key_is_reported_by_the_system_check_naming_the_setting(account, settings, new_key):
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    errors = [e for e in run_checks(tags=["zoomadmin"]) if e.id == "zoomadmin.W001"]
    assert len(errors) == 1
    assert "FIELD_ENCRYPTION_KEY" in errors[0].msg
    assert "Acme" in errors[0].msg


def test_the_system_check_is_quiet_when_the_key_fits(account):
    assert not [e for e in run_checks(tags=["zoomadmin"]) if e.id == "zoomadmin.W001"]


def test_saving_an_account_whose_secrets_are_unreadable_keeps_their_ciphertext(
    account, settings, old_key, new_key
):
    # given the wrong key
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    before = raw_row(account.pk)
    fresh = ZoomAccount.objects.get(pk=account.pk)

    # when an admin renames the account
    fresh.name = "Acme (renamed)"
    fresh.save()

    # then the name is saved and the secrets survive for the right key
    assert raw_row(account.pk) == before
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    fresh = ZoomAccount.objects.get(pk=account.pk)
    assert fresh.name == "Acme (renamed)"
    assert fresh.refresh_token == REFRESH


def test_writing_an_unreadable_secret_back_is_refused(account, settings, new_key):
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    fresh = ZoomAccount.objects.get(pk=account.pk)
    with pytest.raises(ValueError, match="no configured key can decrypt"):
        ZoomAccount.objects.filter(pk=account.pk).update(access_token=fresh.access_token)


def test_acting_on_an_account_with_unreadable_secrets_fails_at_once_naming_the_key(
    account, settings, new_key
):
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    fresh = ZoomAccount.objects.get(pk=account.pk)
    with pytest.raises(ZoomCredentialsUnreadable) as caught:
        client_for_account(fresh)
    assert isinstance(caught.value, ZoomNeedsReconnect)
    assert caught.value.permanent
    assert "FIELD_ENCRYPTION_KEY" in caught.value.describe()


def test_pages_still_work_and_explain_when_the_key_is_wrong(
    client, admin_user, account, settings, new_key
):
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    client.force_login(admin_user)

    listing = client.get("/connections/")
    detail = client.get(f"/connections/{account.pk}/")
    admin_list = client.get("/admin/meetings/zoomaccount/")
    admin_change = client.get(f"/admin/meetings/zoomaccount/{account.pk}/change/")

    assert listing.status_code == 200
    assert "Unreadable" in listing.text
    assert detail.status_code == 200
    assert "FIELD_ENCRYPTION_KEY" in detail.text
    assert admin_list.status_code == 200
    assert admin_change.status_code == 200
    assert "FIELD_ENCRYPTION_KEY" in admin_change.text


def test_the_admin_never_shows_a_token_or_secret(client, admin_user, account):
    s2s = ZoomAccount.objects.create(
        name="S2S",
        kind=ZoomAccount.Kind.SERVER_TO_SERVER,
        zoom_account_id="acct-2",
        client_id="client-2",
        client_secret="another-client-secret-987",
        access_token="another-access-token-654",
    )
    client.force_login(admin_user)
    pages = [
        client.get("/admin/meetings/zoomaccount/"),
        client.get(f"/admin/meetings/zoomaccount/{account.pk}/change/"),
        client.get(f"/admin/meetings/zoomaccount/{s2s.pk}/change/"),
        client.get("/admin/meetings/zoomaccount/add/"),
        client.get(f"/admin/meetings/zoomaccount/{account.pk}/history/"),
    ]
    for page in pages:
        assert page.status_code == 200
        for secret in (SECRET, ACCESS, REFRESH, "another-client-secret-987", "another-access"):
            assert secret not in page.text
    # the S2S change form has a write-only secret field, empty
    assert 'name="new_client_secret"' in pages[2].text
    assert 'name="access_token"' not in pages[2].text


# --- The proof: after every flow, no token or secret in clear anywhere ---------------------


@pytest.fixture
def sandbox(zoom_sandbox, settings):
    settings.ZOOM_CLIENT_ID = DEFAULT_OAUTH_CLIENT_ID
    settings.ZOOM_CLIENT_SECRET = OAUTH_SECRET
    return zoom_sandbox


def database_text():
    """Everything the database holds, as text: the SQLite file and its write-ahead log byte for
    byte, or every PostgreSQL table's rows cast to text."""
    if connection.vendor == "sqlite":
        name = Path(connection.settings_dict["NAME"])
        files = [str(p) for p in (name, Path(f"{name}-wal")) if p.exists()]
        # Read by another process: closing any descriptor of the database file in this process
        # drops the POSIX locks SQLite holds on it for this process's open connection, so the
        # next worker connection to close thinks it is the last one, checkpoints and deletes
        # the write-ahead log under that connection: "database disk image is malformed".
        data = subprocess.run(["cat", "--", *files], capture_output=True, check=True, timeout=30)
        return data.stdout.decode("latin-1")
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT CAST(t AS text) FROM "{table}" AS t')  # noqa: S608
            rows.extend(r[0] for r in cursor.fetchall())
    return "\n".join(rows)


def test_no_token_or_secret_is_ever_in_the_database_the_logs_or_a_page(
    transactional_db, client, admin_user, sandbox, caplog
):
    # Every logger at DEBUG, the chatty HTTP and OAuth libraries included.
    caplog.set_level(logging.DEBUG)
    for name in ("requests_oauthlib", "oauthlib", "urllib3", "meetings", "django"):
        caplog.set_level(logging.DEBUG, logger=name)
    client.force_login(admin_user)
    pages = []

    def keep(response):
        pages.append(response.content.decode())
        return response

    # OAuth: connect through Zoom's consent, refresh on expiry, renew on a 401
    keep(connect_through_zoom(client, name="Via OAuth"))
    oauth_account = ZoomAccount.objects.get(name="Via OAuth")
    ZoomAccount.objects.filter(pk=oauth_account.pk).update(token_expires_at=now())
    oauth.client_for_account(ZoomAccount.objects.get(pk=oauth_account.pk)).get_me()
    sandbox.state.expire_access_tokens()
    oauth.client_for_account(ZoomAccount.objects.get(pk=oauth_account.pk)).get_me()
    keep(client.post(reverse("connection-test", args=[oauth_account.pk]), follow=True))
    keep(
        client.post(
            reverse("connection-test", args=[oauth_account.pk]), headers={"HX-Request": "true"}
        )
    )

    # Server-to-Server: the command, the admin (a refused secret, then a good one), reconnect
    out = io.StringIO()
    call_command(
        "zoom_connect",
        "--server-to-server",
        "--name=Via command",
        f"--account-id={DEFAULT_ACCOUNT_ID}",
        f"--client-id={DEFAULT_S2S_CLIENT_ID}",
        f"--client-secret={S2S_SECRET}",
        stdout=out,
    )
    form = {"zoom_account_id": DEFAULT_ACCOUNT_ID, "client_id": DEFAULT_S2S_CLIENT_ID}
    keep(
        client.post(
            "/admin/meetings/zoomaccount/add/",
            form | {"name": "Via admin", "plan": "pro", "new_client_secret": "typed-wrong-secret"},
        )
    )
    keep(
        client.post(
            "/admin/meetings/zoomaccount/add/",
            form | {"name": "Via admin", "plan": "pro", "new_client_secret": S2S_SECRET},
            follow=True,
        )
    )
    via_admin = ZoomAccount.objects.get(name="Via admin")
    keep(
        client.post(
            reverse("connection-reconnect", args=[via_admin.pk]),
            {"client_secret": "typed-wrong-secret"},
        )
    )
    keep(client.post(reverse("connection-disconnect", args=[via_admin.pk]), follow=True))

    # Every page an admin can open about them
    for account in ZoomAccount.objects.all():
        for url in (
            reverse("connection", args=[account.pk]),
            reverse("connection-reconnect", args=[account.pk]),
            f"/admin/meetings/zoomaccount/{account.pk}/change/",
            f"/admin/meetings/zoomaccount/{account.pk}/history/",
        ):
            keep(client.get(url))
    for url in (reverse("connections"), "/admin/meetings/zoomaccount/", "/admin/"):
        keep(client.get(url))

    # the scans read what they claim to read
    stored = database_text()
    logs = caplog.text
    assert "owner@sandbox.example" in stored
    assert "gAAAAA" in stored  # the secrets are there, as Fernet ciphertext
    assert "New Zoom access token for account" in logs
    assert "connectionpool" in logs or "Starting new HTTP connection" in logs
    assert sum("Via OAuth" in page for page in pages) >= 5
    assert ZoomAccount.objects.filter(access_token__gt="").count() >= 2

    # then no token (the sandbox's all start sbx_at_ / sbx_rt_) and no secret is in clear
    for where, text in [("database", stored), ("logs", logs), ("command output", out.getvalue())]:
        text_pages = [(f"page {i}", page) for i, page in enumerate(pages)]
        for label, haystack in [(where, text), *text_pages]:
            for secret in ("sbx_at_", "sbx_rt_", OAUTH_SECRET, S2S_SECRET, "typed-wrong-secret"):
                assert secret not in haystack, f"{secret!r} found in clear in {label}"

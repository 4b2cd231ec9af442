"""
After the whole suite, no page, log or database row holds a token, client secret or stream key in
clear (issue 7). The scan itself is tests/fixtures/secret_scan.py and runs over every test of the
session; this file proves that it is on, that it reads what it claims to read, and that it fails
a run in which a secret is planted: page, log line, database column, a token's random part alone,
and a secret first learned by a later test.
"""

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from meetings.models import Meeting
from tests.dashboard_data import make_account, make_meeting
from tests.fixtures.secret_scan import (
    RECORDER,
    TOKEN_SHAPE,
    Scanner,
    find,
    find_in_items,
    scannable,
    scanner_of,
)

ROOT = Path(__file__).resolve().parent.parent
SUBRUN_TIMEOUT = 180  # a fresh SQLite test database (all migrations) on a busy 2-core machine


@pytest.fixture
def scanner(request):
    found = scanner_of(request.config)
    assert found is not None, "the secret scan plugin is not installed for this session"
    return found


def collected(scanner):
    with scanner.collected.lock:
        return list(scanner.collected.items)


# --- The session's scan is on and reads what it claims to read ----------------------------------


def test_the_recording_middleware_is_first_for_the_whole_session():
    assert django_settings.MIDDLEWARE[0] == RECORDER


def test_this_tests_pages_and_log_lines_are_collected(scanner, client, admin_user):
    client.force_login(admin_user)

    client.get("/connections/")
    logging.getLogger("meetings.tests").warning("a line the scan reads: %s", "marker-4711")

    items = collected(scanner)
    assert any(where == "the response to GET /connections/ (200)" for where, _ in items)
    page = next(text for where, text in items if "GET /connections/" in where)
    assert "Content-Type: text/html" in page and "</html>" in page
    assert any("marker-4711" in text for where, text in items if "log record" in where)


def test_the_database_is_read_through_the_tests_own_transaction_sessions_decoded(
    scanner, client, admin_user
):
    account = make_account("Scan probe")
    make_meeting(account, topic="row-only-this-test-sees-0815")
    client.force_login(admin_user)

    scanner.record_database(label="probe")

    items = [(w, t) for w, t in collected(scanner) if w.startswith("probe")]
    assert any("row-only-this-test-sees-0815" in t for w, t in items if "meetings_meeting" in w)
    sessions = [t for w, t in items if "django_session (decoded)" in w]
    assert any("_auth_user_id" in t for t in sessions)


def test_tokens_the_sandbox_issues_are_learned(scanner, zoom_sandbox_token):
    assert zoom_sandbox_token.startswith("sbx_at_")
    assert zoom_sandbox_token[7:50] in scanner.secrets.bodies


def test_client_secrets_and_stream_keys_are_learned_from_rows_and_forms(scanner, client, operator):
    account = make_account("Learned", client_secret="client-secret-learned-1")
    meeting = make_meeting(account, stream_key="sk-saved-on-a-meeting-1")
    client.force_login(operator)

    client.post(
        f"/meetings/{meeting.pk}/livestream/",
        {
            "stream_url": "rtmp://live.example.com/app",
            "stream_key": "sk-typed-into-the-form-1",
            "page_url": "https://example.com/live",
        },
    )

    for secret in (
        "client-secret-learned-1",
        "sk-saved-on-a-meeting-1",
        "sk-typed-into-the-form-1",
    ):
        assert secret in scanner.secrets.others
    # ...and none of them is in what this test rendered, logged or stored so far.
    scanner.record_database(label="probe")
    assert find_in_items(collected(scanner), *scanner.secrets.since()) == []


def test_a_deferred_stream_key_is_not_loaded_just_to_learn_it(
    db, scanner, django_assert_num_queries
):
    meeting = make_meeting(make_account("Deferred"), stream_key="sk-deferred-0001")
    row = Meeting.objects.defer("stream_key").get(pk=meeting.pk)
    row.topic = "Renamed"

    with django_assert_num_queries(1):
        row.save(update_fields=["topic"])


# --- The finder, on its own -------------------------------------------------------------------


def test_the_finder_names_the_kind_and_never_the_secret():
    token = "sbx_at_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v"
    fresh = Scanner()
    fresh.secrets.add("Zoom sandbox access token", token)
    fresh.secrets.add("stream key", "sk-live-0123456789")

    page = f"<p>{token}</p><p>key: sk-live-0123456789</p>"
    found = fresh.secrets.find(page)

    assert found == [
        "a Zoom sandbox access token (sbx_at_…)",
        "a Zoom sandbox access token (its random part)",
        "a stream key (sk-…, 18 characters)",
    ]
    assert not any("0123456789" in what or token[7:] in what for what in found)


def test_a_tokens_random_part_alone_is_found_inside_other_text():
    body = "Zz9_-Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8Nn7Mm6"[:43]  # token_urlsafe(32) is 43
    fresh = Scanner()
    fresh.secrets.add("Zoom sandbox refresh token", "sbx_rt_" + body)

    assert fresh.secrets.find(f'{{"x":"abc{body}def"}}') == [
        "a Zoom sandbox refresh token (its random part)"
    ]
    assert fresh.secrets.find(body[:-1]) == []


def test_anything_shaped_like_a_sandbox_token_is_a_leak_whoever_issued_it():
    assert find("Authorization: Bearer sbx_at_q8Wc0xNnVQ", {}, []) == [
        "a Zoom sandbox access token (sbx_at_…)"
    ]
    assert find("tokens start with sbx_at_… and sbx_rt_…", {}, []) == []


def test_the_sandboxs_seeded_stream_keys_are_found_by_their_shape():
    fresh = Scanner()
    fresh.secrets.add("stream key", "sbx-key-0123456789ab")

    assert fresh.secrets.others == {}  # not searched for one by one
    assert fresh.secrets.find("key sbx-key-00000000beef on meeting 1") == [
        "a stream key of the sandbox's seeded world (sbx-key-…)"
    ]
    assert fresh.secrets.find("sbx-key-…ab") == []


def test_masked_and_encrypted_forms_are_not_leaks():
    fresh = Scanner()
    fresh.secrets.add("stream key", "sk-live-0123456789")
    assert fresh.secrets.find("stream key: ••••••••••••89, (set)") == []
    assert fresh.secrets.find("gAAAAABnX2c3bG9uZy1jaXBoZXJ0ZXh0") == []


@pytest.mark.parametrize("weak", ["", "short", "k" * 10, "         ", "aaaabbbb", "0000-0000"])
def test_strings_too_plain_to_search_for_are_counted_not_scanned(weak):
    assert not scannable(weak)
    fresh = Scanner()
    fresh.secrets.add("stream key", weak)
    assert weak not in fresh.secrets.others


def test_log_files_under_a_directory_are_scanned(tmp_path):
    fresh = Scanner()
    fresh.secrets.add("client secret", "client-secret-in-a-log")
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "w1.log").write_text("INFO ready.\nusing client-secret-in-a-log\n")
    (tmp_path / "notes.txt").write_text("client-secret-in-a-log")  # not a log file

    leaks = fresh.check_files(tmp_path)

    assert leaks == [
        ("session", str(tmp_path / "worker" / "w1.log"), "a client secret (cli…, 22 characters)")
    ]


# --- Planted secrets fail a real pytest run ----------------------------------------------------

PLANTED_TESTS = """
import logging

from django.http import HttpResponse
from django.urls import path

from meetings.models import Meeting, ZoomAccount
from meetings.zoom.sandbox import DEFAULT_ACCOUNT_ID, DEFAULT_S2S_CLIENT_ID, SandboxState

PLANTED = {}


def page(request):
    return HttpResponse(f"<html><body><p>{PLANTED['text']}</p></body></html>")


urlpatterns = [path("page/", page)]


def sandbox_token():
    state = SandboxState()
    app = state.apps[DEFAULT_S2S_CLIENT_ID]
    return state.account_credentials(app, DEFAULT_ACCOUNT_ID)["access_token"]


def account(**fields):
    return ZoomAccount.objects.create(kind="server_to_server", client_id="planted", **fields)


def test_a_page_showing_a_token(client, settings):
    settings.ROOT_URLCONF = __name__
    PLANTED["text"] = "token: " + sandbox_token()
    client.get("/page/")


def test_a_page_showing_only_a_tokens_random_part(client, settings):
    settings.ROOT_URLCONF = __name__
    PLANTED["text"] = "…" + sandbox_token()[7:]
    client.get("/page/")


def test_a_log_line_with_a_stream_key(db):
    Meeting.objects.create(account=account(name="a"), zoom_id=1, stream_key="sk-planted-log-0001")
    logging.getLogger("planted").warning("configured the stream with %s", "sk-planted-log-0001")


def test_a_client_secret_in_a_plain_database_column(db):
    SandboxState()  # its apps' client secrets are learned
    account(name="sandbox-s2s-secret")


def test_nothing_in_clear(client, settings, db):
    settings.ROOT_URLCONF = __name__
    token = sandbox_token()
    account(name="fine", access_token=token, client_secret="planted-but-encrypted-1")
    PLANTED["text"] = "token: sbx_at_… (hidden), secret: ••••"
    client.get("/page/")
    logging.getLogger("planted").warning("a token was issued (%d characters)", len(token))


def test_late_a_secret_logged_before_anyone_knows_it_is_one(db):
    logging.getLogger("planted").warning("remember %s", "sk-planted-late-0042")


def test_late_b_the_same_string_saved_as_a_stream_key(db):
    Meeting.objects.create(account=account(name="b"), zoom_id=2, stream_key="sk-planted-late-0042")
"""


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    """A pytest run of PLANTED_TESTS with only the scan plugin, on its own SQLite database."""
    directory = tmp_path_factory.mktemp("planted")
    (directory / "test_planted.py").write_text(PLANTED_TESTS)
    (directory / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = zoomadmin.settings\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "DJANGO_", "PYTEST_", "ZOOM_"))
    }
    env.update(ZOOMADMIN_VAR_DIR=str(directory / "var"), PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(directory / "pytest.ini"),
            "--rootdir",
            str(directory),
            "-p",
            "tests.fixtures.secret_scan",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(directory / "tmp"),
            "--show-capture=no",
            "-rEp",
            "-q",
            str(directory / "test_planted.py"),
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBRUN_TIMEOUT,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def test_a_run_with_planted_secrets_fails(planted_run):
    returncode, output = planted_run
    assert returncode == 1, output
    # pytest counts a test whose teardown failed as passed too: 7 tests, 4 of them with errors
    assert "7 passed, 4 errors" in output, output


@pytest.mark.parametrize(
    ("test", "finding"),
    [
        (
            "test_a_page_showing_a_token",
            "a Zoom sandbox access token (sbx_at_…) in the response to GET /page/ (200)",
        ),
        (
            "test_a_page_showing_only_a_tokens_random_part",
            "a Zoom sandbox access token (its random part) in the response to GET /page/ (200)",
        ),
        (
            "test_a_log_line_with_a_stream_key",
            "a stream key (sk-…, 19 characters) in a log record of planted (WARNING)",
        ),
        (
            "test_a_client_secret_in_a_plain_database_column",
            "a client secret (san…, 18 characters) in the database, table meetings_zoomaccount",
        ),
    ],
)
def test_each_planted_secret_fails_its_test_saying_where(planted_run, test, finding):
    _, output = planted_run
    errors = [line for line in output.splitlines() if line.startswith("ERROR ")]
    assert any(f"ERROR test_planted.py::{test} " in line for line in errors), output
    assert finding in output, output


def test_the_test_with_nothing_in_clear_passes(planted_run):
    _, output = planted_run
    assert "PASSED test_planted.py::test_nothing_in_clear" in output, output


def test_a_secret_learned_only_by_a_later_test_is_caught_at_the_end_of_the_session(planted_run):
    _, output = planted_run
    assert (
        "SECRET IN CLEAR: a stream key (sk-…, 20 characters) in a log record of planted "
        "(WARNING) (during test_planted.py::test_late_a_secret_logged_before_anyone_knows_it_"
        "is_one)"
    ) in output, output


def test_the_report_never_repeats_a_secret(planted_run):
    _, output = planted_run
    assert not TOKEN_SHAPE.search(output)
    assert not re.search(r"sk-planted-(log|late)-\d+", output)
    assert "sandbox-s2s-secret" not in output

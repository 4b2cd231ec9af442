"""Structured logs: the action id on every line of a job, and no credential on any line."""

import io
import json
import logging
import os
import subprocess
import sys

import pytest
from celery import shared_task
from hypothesis import assume, example, given
from hypothesis import strategies as st

from meetings.logging import (
    JsonFormatter,
    TextFormatter,
    action_context,
    current_action_id,
    scrub,
    scrub_value,
)
from tests.test_settings import ROOT, load_settings

SECRET_CHARS = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/",
    min_size=8,
    max_size=80,
)


@pytest.fixture
def log_lines():
    """A logger whose lines (JSON formatter) are collected; returns (logger, read())."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.logging.json")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_every_line_written_inside_an_action_context_carries_the_action_id(log_lines):
    logger, read = log_lines

    logger.info("before")
    with action_context(42):
        logger.info("claimed")
        logger.warning("Zoom answered %s", 429)
    logger.info("after")

    lines = read()
    assert [line.get("action_id") for line in lines] == [None, 42, 42, None]
    assert lines[2]["message"] == "Zoom answered 429"
    assert lines[2]["level"] == "WARNING"
    assert lines[2]["logger"] == "tests.logging.json"


def test_action_contexts_nest_and_restore_the_outer_id():
    with action_context(1):
        with action_context(2):
            assert current_action_id() == 2
        assert current_action_id() == 1
    assert current_action_id() is None


def test_json_lines_hold_extras_and_the_exception_scrubbed(log_lines):
    logger, read = log_lines

    try:
        raise RuntimeError("token refused: access_token=abc.def.ghi-secret")
    except RuntimeError:
        logger.exception(
            "refresh failed", extra={"account": 7, "answer": {"refresh_token": "r-secret-1"}}
        )

    (line,) = read()
    assert line["account"] == 7
    assert line["answer"] == {"refresh_token": "[redacted]"}
    assert "RuntimeError" in line["exc"]
    assert "abc.def.ghi-secret" not in json.dumps(line)


def test_text_lines_show_the_action_id_beside_the_logger_name():
    record = logging.LogRecord("meetings.tasks", logging.INFO, __file__, 1, "ended", (), None)
    record.action_id = 9

    line = TextFormatter().format(record)

    assert "INFO meetings.tasks [action=9] ended" in line


def test_secrets_in_messages_args_and_exceptions_never_reach_a_handler(caplog):
    logger = logging.getLogger("meetings.tests.redaction")

    with caplog.at_level(logging.INFO, logger="meetings.tests.redaction"):
        logger.info("token answer %s", {"access_token": "at-123456789", "expires_in": 3600})
        logger.info("POST /oauth/token refresh_token=rt-987654321&grant_type=refresh_token")
        logger.info("header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln")
        logger.info("stream %(stream_key)s", {"stream_key": "ignored"})
        logger.info("configured stream_key: live-key-55555 on meeting %s", 85746065432)
        try:
            raise ValueError("client_secret='s3cr3t-value'")
        except ValueError:
            logger.exception("connect failed")

    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    for secret in ("at-123456789", "rt-987654321", "eyJzdWIiOiIxIn0", "live-key-55555", "s3cr3t"):
        assert secret not in text
    assert "85746065432" in text  # ordinary values stay
    assert text.count("[redacted]") >= 5


@pytest.mark.parametrize(
    "text",
    [
        "Zoom: meeting not found or not ended (3001) code=3001",
        "endpoint.url_validation plainToken=abc encryptedToken=def",
        "the access token expired; refreshing",
        "basic auth is not used; bearer tokens are",
        '{"token_type": "bearer", "expires_in": 3599}',
    ],
)
def test_scrubbing_leaves_ordinary_text_alone(text):
    assert scrub(text) == text


SECRET_WRITINGS = (
    "access_token={}",
    "refresh_token: {}",
    '"client_secret": "{}"',
    "{{'stream_key': '{}'}}",
    "Authorization: Bearer {}",
)


@given(secret=SECRET_CHARS)
@example(secret="client_s")
def test_any_value_of_a_secret_name_is_redacted_however_it_is_written(secret):
    # A "secret" that is a piece of the text around it (hypothesis found "client_s", part of
    # the key "client_secret") cannot be told apart from that text: not a case to judge.
    def nested(value):
        return json.dumps({"nested": json.dumps({"stream_key": value})})

    assume(not any(secret in w.format("") for w in SECRET_WRITINGS))
    assume(secret not in nested(""))
    for written in (*(w.format(secret) for w in SECRET_WRITINGS), nested(secret)):
        assert secret not in scrub(written), written


@given(secret=SECRET_CHARS)
@example(secret="stream_k")
def test_scrub_value_redacts_secret_keys_at_any_depth(secret):
    def data(value):
        return {"a": [{"stream_key": value}], "b": {"Access_Token": value}, "c": f"token={value}"}

    # Compared whole: a "secret" that is a piece of the keys around it (hypothesis found
    # "stream_k") stays in the text, yet every value is replaced.
    assert scrub_value(data(secret)) == data("[redacted]")


@shared_task(name="tests.logging.log_for_action")
def log_for_action(action_id, note=""):
    logging.getLogger("meetings.tests.task").warning("working %s", note)
    return current_action_id()


@shared_task(name="tests.logging.log_for_other")
def log_for_other(meeting_id):
    logging.getLogger("meetings.tests.task").warning("no action here")
    return current_action_id()


def test_a_task_whose_first_parameter_is_action_id_logs_with_it(caplog):
    import meetings.tasks  # noqa: F401  (what the worker imports: connects the task hooks)

    with caplog.at_level(logging.WARNING, logger="meetings.tests.task"):
        seen = log_for_action.apply(args=(314,), kwargs={"note": "x"}).get()
        other = log_for_other.apply(args=(85746065432,)).get()

    assert seen == 314
    assert other is None
    assert current_action_id() is None  # unbound after the task
    by_message = {r.getMessage(): r for r in caplog.records}
    assert by_message["working x"].action_id == 314
    assert by_message["no action here"].action_id is None


def test_an_unknown_log_format_stops_start_up():
    code, err = load_settings(LOG_FORMAT="xml")
    assert code != 0
    assert "LOG_FORMAT" in err


def test_production_writes_json_lines_without_secrets(tmp_path):
    from cryptography.fernet import Fernet

    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    environment.update(
        DEBUG="false",
        ALLOWED_HOSTS="ops.example.com",
        SECRET_KEY="s" * 64,
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ZOOM_WEBHOOK_SECRET_TOKEN="from-the-zoom-app",
        ZOOMADMIN_VAR_DIR=str(tmp_path),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
    )
    environment.pop("LOG_FORMAT", None)
    script = (
        "import django, logging; django.setup()\n"
        "from meetings.logging import action_context\n"
        "SECRET = 'rt-abcdefgh1'\n"
        "with action_context(77):\n"
        "    logging.getLogger('meetings.x').warning('refreshed refresh_token=%s', SECRET)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**environment, "DJANGO_SETTINGS_MODULE": "zoomadmin.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(x) for x in result.stderr.splitlines() if x.startswith("{")]
    assert line["action_id"] == 77
    assert line["level"] == "WARNING"
    assert "rt-abcdefgh1" not in result.stderr
    assert line["message"] == "refreshed refresh_token=[redacted]"


@pytest.mark.worker
# The worker writes its samples where this process's /metrics reads them (the fixture would
# otherwise give it a directory of its own).
@pytest.mark.worker_env(PROMETHEUS_MULTIPROC_DIR=os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""))
def test_a_real_jobs_lines_carry_its_action_id_and_its_zoom_calls_reach_metrics(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox, admin_user, client
):
    import time

    from django.urls import reverse
    from prometheus_client.parser import text_string_to_metric_families

    from meetings.actions import request_action
    from meetings.models import Action
    from meetings.models.actions import TERMINAL_STATES

    def requests_ended():
        client.force_login(admin_user)
        text = client.get(reverse("metrics")).content.decode()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "zoomadmin_zoom_requests_total" and s.labels == {
                    "method": "PUT",
                    "path": "/meetings/{meetingId}/status",
                    "status": "204",
                }:
                    return s.value
        return 0.0

    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="started")
    before = requests_ended()

    action, _ = request_action(
        account=sandbox_account, kind="end_meeting", source="dashboard", target_id=meeting["id"]
    )
    deadline = time.monotonic() + 60
    while not Action.objects.filter(pk=action.pk, state__in=TERMINAL_STATES).exists():
        assert time.monotonic() < deadline, "the action did not finish in 60 s"
        time.sleep(0.1)

    lines = celery_worker_process.log().splitlines()
    own = [line for line in lines if f"action {action.pk} " in line or "run_action[" in line]
    finished = [line for line in own if "succeeded" in line]
    assert finished, "\n".join(lines[-50:])
    # Lines the job wrote while it ran (not the main process's "received").
    during = [line for line in own if "received" not in line]
    assert during and all(f"[action={action.pk}]" in line for line in during), "\n".join(own)
    assert requests_ended() - before == 1

"""/healthz: the database, the broker, a live worker and each Zoom account, as 200 or 503 JSON."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.test import override_settings
from django.urls import reverse
from django.utils.timezone import now

from meetings.models import WorkerHeartbeat, ZoomAccount
from tests.fixtures.worker import database_url

ROOT = Path(__file__).resolve().parent.parent
OTHER_KEY = "T3RoZXIta2V5LW5vdC1jb25maWd1cmVkLWhlcmUtMDA="  # a valid Fernet key, not configured


@pytest.fixture
def live_worker_beat(db):
    return WorkerHeartbeat.objects.create(hostname="celery@ops-test", pid=123, last_seen=now())


def make_account(name="Acme", **fields):
    defaults = {
        "kind": ZoomAccount.Kind.SERVER_TO_SERVER,
        "client_id": "sandbox-s2s-client",
        "client_secret": "client-secret-value-123",
        "access_token": "access-token-value-456",
        "token_expires_at": now() + timedelta(hours=1),
        "zoom_account_id": "sandbox-account",
    }
    defaults.update(fields)
    return ZoomAccount.objects.create(name=name, **defaults)


def get_health(client, *checks, **headers):
    query = "&".join(f"check={c}" for c in checks)
    response = client.get(reverse("healthz") + (f"?{query}" if query else ""), **headers)
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    return response, response.json()


def test_everything_healthy_answers_200_with_each_check(client, live_worker_beat):
    make_account()

    response, body = get_health(client)

    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "worker", "accounts"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["worker"]["alive"] == 1
    assert body["checks"]["accounts"]["connected"] == 1
    expected = "redis" if settings.CELERY_BROKER_URL.startswith("redis") else "filesystem"
    assert body["checks"]["broker"]["transport"] == expected
    assert isinstance(body["checks"]["broker"]["queue_length"], int)


def test_no_worker_heartbeat_answers_503_and_says_why(client, db):
    response, body = get_health(client)

    assert response.status_code == 503
    assert body["status"] == "fail"
    assert body["checks"]["worker"]["ok"] is False
    assert "no Celery worker" in body["checks"]["worker"]["error"]
    assert body["checks"]["database"]["ok"] is True


@override_settings(WORKER_HEARTBEAT_STALE_SECONDS=30)
def test_a_heartbeat_older_than_the_stale_limit_does_not_count(client, db):
    WorkerHeartbeat.objects.create(hostname="celery@gone", last_seen=now() - timedelta(seconds=31))

    response, body = get_health(client, "worker")

    assert response.status_code == 503
    assert body["checks"]["worker"]["alive"] == 0
    assert body["checks"]["worker"]["stale"] == 1


def test_a_load_balancer_can_ask_for_only_the_instances_own_dependencies(client, db):
    response, body = get_health(client, "database", "broker")

    assert response.status_code == 200  # no worker, but that was not asked
    assert set(body["checks"]) == {"database", "broker"}


def test_an_unknown_check_is_a_clear_400(client, db):
    response, body = get_health(client, "database", "<script>")

    assert response.status_code == 400
    assert "unknown check" in body["error"]


def test_an_account_needing_reconnect_fails_the_check_and_a_disconnected_one_does_not(
    client, live_worker_beat
):
    make_account("Fine")
    make_account("Refused", status=ZoomAccount.Status.NEEDS_RECONNECT, access_token="")
    make_account("Retired", status=ZoomAccount.Status.DISCONNECTED, access_token="")

    response, body = get_health(client)

    assert response.status_code == 503
    accounts = body["checks"]["accounts"]
    assert accounts["ok"] is False
    assert (accounts["connected"], accounts["needs_reconnect"], accounts["disconnected"]) == (
        1,
        1,
        1,
    )
    assert "need reconnecting" in accounts["error"]


def test_an_account_whose_secrets_the_key_cannot_decrypt_is_reported_as_undecryptable(
    client, admin_user, live_worker_beat
):
    with override_settings(FIELD_ENCRYPTION_KEYS=[OTHER_KEY]):
        make_account("Old key")

    client.force_login(admin_user)
    response, body = get_health(client, "accounts")

    assert response.status_code == 503
    assert body["checks"]["accounts"]["undecryptable"] == 1
    assert "FIELD_ENCRYPTION_KEY" in body["checks"]["accounts"]["error"]
    (listed,) = body["checks"]["accounts"]["accounts"]
    assert listed["name"] == "Old key"
    assert listed["status"] == "undecryptable"


def test_anonymous_callers_get_counts_and_staff_get_names_but_nobody_gets_a_token(
    client, admin_user, viewer, live_worker_beat
):
    make_account("Acme Corp")

    _, anonymous = get_health(client)
    client.force_login(viewer)
    _, as_viewer = get_health(client)
    client.force_login(admin_user)
    response, as_staff = get_health(client)

    for body in (anonymous, as_viewer):
        assert "accounts" not in body["checks"]["accounts"]
        assert "workers" not in body["checks"]["worker"]
        assert "Acme Corp" not in str(body)
    (listed,) = as_staff["checks"]["accounts"]["accounts"]
    assert listed["name"] == "Acme Corp"
    assert listed["status"] == "connected"
    assert as_staff["checks"]["worker"]["workers"][0]["hostname"] == "celery@ops-test"
    for secret in ("access-token-value-456", "client-secret-value-123"):
        assert secret not in response.content.decode()


@override_settings(METRICS_TOKEN="monitoring-token-0123456789")
def test_the_monitoring_token_gets_the_detailed_report(client, live_worker_beat):
    make_account("Acme Corp")

    _, body = get_health(client, HTTP_AUTHORIZATION="Bearer monitoring-token-0123456789")

    assert body["checks"]["accounts"]["accounts"][0]["name"] == "Acme Corp"


def test_an_unreachable_redis_broker_fails_fast_with_plain_words(client, admin_user, db):
    client.force_login(admin_user)
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    url = "redis://:hunter2-password@127.0.0.1:1/0"
    from meetings import health

    health._redis_client.cache_clear()
    with override_settings(CELERY_BROKER_URL=url, HEALTH_CHECK_TIMEOUT_SECONDS=1.0):
        started = time.monotonic()
        response, body = get_health(client, "broker")
        elapsed = time.monotonic() - started
    health._redis_client.cache_clear()

    assert response.status_code == 503
    assert elapsed < 3
    broker = body["checks"]["broker"]
    assert broker["error"] == "the broker cannot be reached"
    assert "hunter2" not in response.content.decode()


def test_a_missing_filesystem_broker_folder_fails_the_check(client, db, tmp_path):
    missing = str(tmp_path / "no-such-broker")
    with override_settings(
        CELERY_BROKER_URL="filesystem://",
        CELERY_BROKER_TRANSPORT_OPTIONS={"data_folder_in": missing, "data_folder_out": missing},
    ):
        response, body = get_health(client, "broker")

    assert response.status_code == 503
    assert body["checks"]["broker"]["error"] == "a broker folder is missing"


def test_a_database_that_cannot_be_reached_gives_503_json_not_a_500(client, db, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    # The unit's edge: the database connection refuses, as it does when the server is down.
    with monkeypatch.context() as patch:
        patch.setattr(connection, "cursor", refuse)
        response, body = get_health(client, "database")

    assert response.status_code == 503
    assert body["checks"]["database"]["error"] == "the database cannot be reached"


def test_healthz_refuses_to_change_anything(client, db):
    response = client.post(reverse("healthz"))
    assert response.status_code == 405


# --- a real worker ----------------------------------------------------------------------------


def _wait_for(predicate, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_running_worker_turns_the_check_green_and_its_shutdown_turns_it_red(client):
    node = f"ops-health-{os.getpid()}@localhost"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "WORKER_HEARTBEAT_INTERVAL_SECONDS": "1",
        "WORKER_HEARTBEAT_STALE_SECONDS": "5",
    }
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("celery")),
            "-A",
            "zoomadmin",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
            "-n",
            node,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        beating = _wait_for(lambda: WorkerHeartbeat.objects.filter(hostname=node).exists(), 60)
        assert beating, "the worker wrote no heartbeat within 60 s"
        first = WorkerHeartbeat.objects.get(hostname=node).last_seen
        assert _wait_for(
            lambda: WorkerHeartbeat.objects.get(hostname=node).last_seen > first, 10
        ), "the heartbeat was not renewed"

        response, body = get_health(client, "worker")
        assert response.status_code == 200, body
        assert body["checks"]["worker"]["alive"] == 1

        worker.send_signal(signal.SIGTERM)  # a warm shutdown, as systemd or Kubernetes sends
        worker.wait(timeout=30)

        assert not WorkerHeartbeat.objects.filter(hostname=node).exists()
        response, body = get_health(client, "worker")
        assert response.status_code == 503
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
        if worker.stderr:
            worker.stderr.close()

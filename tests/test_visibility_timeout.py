"""No task may outlive the Redis broker's visibility timeout: past it, Redis hands the still
unacknowledged message (our tasks are acks_late) to a second worker while the first runs on."""

import os
import subprocess
import sys
from pathlib import Path

from django.test import override_settings

from meetings.checks import (
    check_tasks_end_before_the_broker_redelivers_them,
    tasks_outliving_the_visibility_timeout,
)
from meetings.tasks.actions import RUN_TIME_LIMIT

ROOT = Path(__file__).resolve().parent.parent
REDIS = "redis://127.0.0.1:6379/0"


def redis_broker(visibility_timeout):
    return override_settings(
        CELERY_BROKER_URL=REDIS,
        CELERY_BROKER_TRANSPORT_OPTIONS={"visibility_timeout": visibility_timeout},
    )


def test_the_default_visibility_timeout_outlasts_every_task():
    with redis_broker(3600):
        assert tasks_outliving_the_visibility_timeout() == []
        assert check_tasks_end_before_the_broker_redelivers_them(None) == []


def test_a_visibility_timeout_shorter_than_an_actions_time_limit_is_an_error_naming_the_task():
    # the setting main had before: 600 s, while an action may run 31 minutes
    with redis_broker(600):
        found = dict(tasks_outliving_the_visibility_timeout())
        errors = check_tasks_end_before_the_broker_redelivers_them(None)

    assert found["meetings.tasks.actions.run_action"] == RUN_TIME_LIMIT
    assert [e.id for e in errors] == ["zoomadmin.E003"]
    assert "meetings.tasks.actions.run_action (1860 s limit)" in errors[0].msg
    assert "CELERY_VISIBILITY_TIMEOUT" in errors[0].hint


def test_the_embedded_broker_has_no_visibility_timeout_to_break():
    with override_settings(CELERY_BROKER_URL="filesystem://"):
        assert tasks_outliving_the_visibility_timeout() == []


def test_a_worker_refuses_to_start_with_a_visibility_timeout_its_tasks_outlive(tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    environment.update(
        REDIS_URL=REDIS,
        CELERY_VISIBILITY_TIMEOUT="600",
        ZOOMADMIN_VAR_DIR=str(tmp_path),
        DEBUG="true",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "zoomadmin",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT (600 s)" in result.stderr
    assert "meetings.tasks.actions.run_action" in result.stderr


def test_a_worker_refuses_to_start_when_a_sync_parts_time_limit_reaches_the_visibility_timeout(
    tmp_path,
):
    # the action's runs (1,860 s) fit under 2,000 s; a sync part allowed 1,990 + 30 s does not
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    environment.update(
        REDIS_URL=REDIS,
        CELERY_VISIBILITY_TIMEOUT="2000",
        SYNC_PART_SOFT_TIME_LIMIT_SECONDS="1990",
        ZOOMADMIN_VAR_DIR=str(tmp_path),
        DEBUG="true",
    )
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "zoomadmin", "worker", "--pool=solo"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT (2000 s)" in result.stderr
    assert "meetings.tasks.mirror.sync_part (2020 s limit)" in result.stderr
    assert "run_action" not in result.stderr

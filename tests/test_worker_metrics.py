"""A worker host serves its own /metrics (WORKER_METRICS_PORT): Prometheus sees the Zoom requests
and 429s of hosts that run workers and no web process (a web process's /metrics reads only its
own host's multiprocess files)."""

import socket

import pytest
import requests

from meetings.models import ActionState
from tests.test_action_pipeline import ask, wait_finished

pytestmark = pytest.mark.worker

TOKEN = "worker-metrics-token-5b1e"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = free_port()


@pytest.mark.worker_env(WORKER_METRICS_PORT=str(PORT), METRICS_TOKEN=TOKEN)
def test_a_worker_with_no_web_process_beside_it_serves_its_zoom_requests_to_prometheus(
    celery_worker_process, sandbox_account, sandbox_host, zoom_sandbox
):
    # given a worker host (its own metrics directory, no web process) that ends a meeting
    meeting = zoom_sandbox.state.add_meeting(sandbox_host["id"], status="started")
    (done,) = wait_finished([ask(sandbox_account, "end_meeting", target_id=meeting["id"]).pk])
    assert done.state == ActionState.SUCCEEDED, done.result_summary
    url = f"http://127.0.0.1:{PORT}/metrics"

    # when Prometheus scrapes the worker itself
    refused = requests.get(url, timeout=5)
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    scraped = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)

    # then only with the token, and it counts the worker's requests to Zoom
    assert (refused.status_code, wrong.status_code) == (401, 401)
    assert scraped.status_code == 200
    assert scraped.headers["Content-Type"].startswith("text/plain")
    lines = scraped.text.splitlines()
    assert any(
        line.startswith("zoomadmin_zoom_requests_total{")
        and 'method="PUT"' in line
        and 'path="/meetings/{meetingId}/status"' in line
        and 'status="204"' in line
        and float(line.rsplit(" ", 1)[1]) >= 1
        for line in lines
    ), scraped.text[:3000]
    # and none of the database's gauges: those are the web's, or every host would repeat them
    assert not any(line.startswith("zoomadmin_actions") for line in lines)
    assert requests.get(f"http://127.0.0.1:{PORT}/other", timeout=5).status_code == 404

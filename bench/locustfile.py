"""
The load test's simulated operators (locust), driven by `python -m bench load` (`make load`),
which prepares the data and hands it over in the JSON file named by BENCH_LOAD_DATA: one signed-in
session per operator, meeting ids, deeper-page cursors, and actions that are still queued.

An operator browses the meetings list (first page, the live filter, deeper pages, a search),
opens meetings, reads the overview and the activity log, and watches a job the way its page
does: the job fragment every second (htmx's `hx-trigger="every 1s"`) for a few seconds; the
list's live badges are polled as the list page does. Between clicks an operator reads for 1 to
3 seconds. A request fails when it does not answer 200 (286 for a finished job's last poll) or
when it lands on the sign-in page.
"""

import itertools
import json
import os
import random
import time

from locust import HttpUser, between, task

with open(os.environ["BENCH_LOAD_DATA"]) as _f:
    DATA = json.load(_f)
_SESSIONS = itertools.cycle(DATA["sessions"])
WORDS = ("sales", "standup", "review", "town hall", "host17@", "onboarding")
HTMX = {"HX-Request": "true"}


class Operator(HttpUser):
    wait_time = between(1, 3)

    def on_start(self):
        self.client.cookies.set("sessionid", next(_SESSIONS))

    def get(self, url, name, *, headers=None, ok=(200,)):
        with self.client.get(url, name=name, headers=headers, catch_response=True) as response:
            if response.status_code not in ok:
                response.failure(f"HTTP {response.status_code}")
            elif "/accounts/login/" in response.url:
                response.failure("sent to the sign-in page")
            else:
                response.success()
        return response

    @task(4)
    def meetings_first_page(self):
        self.get("/meetings/", "meetings list: first page")

    @task(2)
    def meetings_live(self):
        self.get("/meetings/?status=started", "meetings list: live filter")

    @task(2)
    def meetings_deeper(self):
        cursor = random.choice(DATA["cursors"])
        self.get(f"/meetings/?after={cursor}", "meetings list: deeper page")

    @task(1)
    def meetings_search(self):
        self.get(f"/meetings/?q={random.choice(WORDS)}", "meetings list: search")

    @task(1)
    def meetings_badges(self):
        ids = "&".join(f"id={pk}" for pk in random.sample(DATA["meetings"], 50))
        self.get(f"/meetings/badges/?{ids}", "meetings list: live badges (htmx)", headers=HTMX)

    @task(3)
    def open_meeting(self):
        self.get(f"/meetings/{random.choice(DATA['meetings'])}/", "meeting page")

    @task(1)
    def overview(self):
        self.get("/", "overview")

    @task(1)
    def activity(self):
        self.get("/activity/", "activity log")

    @task(3)
    def watch_a_job(self):
        action = random.choice(DATA["actions"])
        for _ in range(5):
            self.get(
                f"/activity/{action}/",
                "job status poll (htmx, every 1 s)",
                headers=HTMX,
                ok=(200, 286),
            )
            time.sleep(1)

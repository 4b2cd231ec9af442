"""In Chromium: subscribing to notifications and sending a test to a real chat receiver through a
real worker; and a bulk end over meetings of two connections, reviewed per connection."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser]


def test_subscribing_to_a_chat_and_sending_a_test(
    chat_receiver, celery_worker_process, operator_page, live_server, screenshot, operator
):
    from meetings.models import Delivery, Subscription

    page = operator_page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Notifications").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Notifications")
    expect(page.get_by_text("You have no subscription yet")).to_be_visible()

    # a chat address that is not one is refused, saying why, and nothing is saved
    page.get_by_label("An action failed").check()
    page.get_by_label("A live stream stopped that nobody stopped").check()
    page.get_by_label("Chat (Slack, Teams and others)").check()
    page.get_by_label("Chat address").fill("https//hooks.example.org/oops")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("alert")).to_contain_text("This is not a chat address")
    assert not Subscription.objects.exists()

    # a right one is saved, and never shown back
    url = chat_receiver.url()
    page.get_by_label("An action failed").check()
    page.get_by_label("Chat (Slack, Teams and others)").check()
    page.get_by_label("Chat address").fill(url)
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_text("Subscribed: chat json://127.0.0.1/••••")).to_be_visible()
    row = page.locator("#subscription-" + str(Subscription.objects.get().pk))
    expect(row).to_contain_text("An action failed")
    assert "T0k3n" not in page.content()
    screenshot(page, "1-subscribed")

    # the test button says it is sending, then that it was sent
    row.get_by_role("button", name="Send a test").click()
    status = row.get_by_role("status")
    expect(status).to_contain_text("Test message sent", timeout=20_000)
    screenshot(page, "2-test-sent")
    (got,) = chat_receiver.received
    assert got["json"]["title"] == "Test message from zoomadmin"
    assert Delivery.objects.get().state == "sent"

    # the history lists it
    page.reload()
    expect(page.locator("tbody tr", has_text="Test message from zoomadmin")).to_contain_text("Sent")


def test_a_bulk_end_over_two_connections_is_reviewed_per_connection(
    operator_page, live_server, screenshot, transactional_db
):
    from meetings.models import Batch
    from tests.dashboard_data import make_account, make_meeting

    page = operator_page
    east, west = make_account("East office"), make_account("West office")
    for account in (east, west):
        for n in range(2):
            make_meeting(account, status="started", topic=f"{account.name} room {n + 1}")
    make_meeting(west, status="waiting", topic="West office planning")

    page.goto(f"{live_server.url}/meetings/?q=office")
    expect(page.locator("tbody tr")).to_have_count(5)
    page.get_by_label("Select all meetings on this page").check()
    page.get_by_label("Bulk action").select_option("end_meeting")
    page.get_by_role("button", name="Review…").click()

    # the dry run, one part per connection, each with its count
    expect(page.get_by_role("heading", level=2)).to_contain_text("4 will be done, 1 skipped")
    expect(page.get_by_text("2 Zoom connections, each at its own rate limit")).to_be_visible()
    expect(page.get_by_role("heading", level=3, name="East office")).to_contain_text(
        "2 of 2 will be done"
    )
    expect(page.get_by_role("heading", level=3, name="West office")).to_contain_text(
        "2 of 3 will be done"
    )
    screenshot(page, "1-review")
    page.get_by_role("button", name="End 4 meetings").click()

    # one batch, its progress per connection (no worker here: nothing has started)
    expect(page.get_by_role("heading", level=1)).to_contain_text("End meeting in bulk")
    progress = page.get_by_role("list", name="Progress per connection")
    expect(progress).to_contain_text("East office: 0 of 2 finished")
    expect(progress).to_contain_text("West office: 0 of 2 finished")
    screenshot(page, "2-batch")
    batch = Batch.objects.get()
    assert batch.account is None and batch.total == 4

    # and it can be cancelled as any batch
    page.get_by_role("button", name="Cancel what has not started").click()
    expect(page.locator("#progress").get_by_role("heading", level=2)).to_contain_text("4 cancelled")
    page.goto(f"{live_server.url}/bulk/batches/")
    expect(page.locator("tbody tr").first).to_contain_text("Several connections")

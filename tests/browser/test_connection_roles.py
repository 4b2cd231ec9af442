"""Roles per Zoom connection in Chromium: an operator of one connection (a viewer of the others)
is offered End on that connection's meetings only; someone with a role on one connection alone
sees nothing of the others."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser]


@pytest.fixture
def two_connections(transactional_db):
    from tests.dashboard_data import make_account, make_meeting

    sales = make_account("Sales Zoom")
    support = make_account("Support Zoom", zoom_account_id="acct-support")
    return (
        sales,
        support,
        make_meeting(sales, status="started", topic="Sales standup"),
        make_meeting(support, status="started", topic="Support standup"),
    )


def test_an_operator_of_one_connection_is_offered_its_meetings_buttons_only(
    page, live_server, sign_in, screenshot, viewer, two_connections
):
    from meetings.models import ConnectionGrant

    sales, _, ours, theirs = two_connections
    ConnectionGrant.objects.create(user=viewer, account=sales, role="operator")
    sign_in(page, viewer)

    # The list shows both connections' meetings (a viewer of all), and offers a bulk End.
    page.goto(f"{live_server.url}/meetings/")
    expect(page.get_by_role("link", name="Sales standup")).to_be_visible()
    expect(page.get_by_role("link", name="Support standup")).to_be_visible()
    screenshot(page, "1-list")

    # Their meeting: seen, nothing to click.
    page.goto(f"{live_server.url}/meetings/{theirs.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Support standup")
    expect(page.get_by_role("link", name="End meeting…")).to_have_count(0)
    expect(page.get_by_role("button", name="Start live stream")).to_have_count(0)
    screenshot(page, "2-other-connection")

    # Our meeting: End is there, and its confirmation opens.
    page.goto(f"{live_server.url}/meetings/{ours.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sales standup")
    page.get_by_role("link", name="End meeting…").click()
    dialog = page.locator("dialog#confirm-end")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Sales standup")
    screenshot(page, "3-own-connection-confirm")


def test_a_role_on_one_connection_alone_shows_nothing_of_the_others(
    page, live_server, sign_in, outsider, two_connections
):
    from meetings.models import ConnectionGrant

    sales, _, _, theirs = two_connections
    ConnectionGrant.objects.create(user=outsider, account=sales, role="operator")
    sign_in(page, outsider)

    expect(page.get_by_text("Sales Zoom").first).to_be_visible()
    expect(page.get_by_text("Support Zoom")).to_have_count(0)
    page.goto(f"{live_server.url}/meetings/")
    expect(page.get_by_role("link", name="Sales standup")).to_be_visible()
    expect(page.get_by_text("Support standup")).to_have_count(0)
    answer = page.goto(f"{live_server.url}/meetings/{theirs.pk}/")
    assert answer.status == 404

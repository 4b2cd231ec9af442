"""Behind a proxy that ends TLS (docs/deploy.md): X-Forwarded-Proto and X-Forwarded-For are
believed only from TRUSTED_PROXIES, and the audit records the client the last trusted hop saw."""

import ipaddress

import pytest
from django.urls import reverse

from meetings.middleware import client_address
from meetings.models import Action

from .dashboard_data import make_account, make_meeting

PROXY = "10.0.0.5"


@pytest.fixture
def behind_proxy(settings):
    settings.TRUSTED_PROXY_NETWORKS = [ipaddress.ip_network("10.0.0.0/24")]
    settings.USE_TLS = True
    settings.SECURE_SSL_REDIRECT = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31536000
    return settings


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        # Straight from the client: whatever it wrote is ignored.
        ("198.51.100.9", "203.0.113.1", "198.51.100.9"),
        # Through the proxy: the address it appended.
        (PROXY, "203.0.113.7", "203.0.113.7"),
        # The client forged an entry in front; the proxy appended the real one.
        (PROXY, "192.0.2.66, 203.0.113.7", "203.0.113.7"),
        # Two trusted hops (a load balancer, then nginx): the first untrusted from the right.
        (PROXY, "192.0.2.66, 203.0.113.7, 10.0.0.9", "203.0.113.7"),
        # Something that is not an address stops the walk at the hop that passed it on.
        (PROXY, "203.0.113.7, garbage", PROXY),
        # A trusted proxy that sent no header: its own address.
        (PROXY, "", PROXY),
        ("2001:db8::1", "", "2001:db8::1"),
    ],
)
def test_the_client_address_comes_from_the_last_trusted_hop(
    behind_proxy, remote, forwarded, client
):
    meta = {"REMOTE_ADDR": remote}
    if forwarded:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded

    assert client_address(meta) == client


def test_the_audit_records_the_client_the_proxy_names(client, operator, behind_proxy, db):
    meeting = make_meeting(make_account(), status="started")
    client.force_login(operator)

    response = client.post(
        reverse("meeting-end", args=[meeting.pk]),
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR="192.0.2.66, 203.0.113.7",
        HTTP_X_FORWARDED_PROTO="https",
    )

    assert response.status_code == 302, response.content[:500]
    assert Action.objects.get().client_ip == "203.0.113.7"


def test_a_client_reaching_gunicorn_directly_cannot_claim_https_or_an_address(
    client, operator, behind_proxy, db
):
    meeting = make_meeting(make_account(), status="started")
    client.force_login(operator)

    # given a request from outside the proxies that claims both
    response = client.post(
        reverse("meeting-end", args=[meeting.pk]),
        REMOTE_ADDR="198.51.100.9",
        HTTP_X_FORWARDED_FOR="203.0.113.7",
        HTTP_X_FORWARDED_PROTO="https",
    )

    # then it is plain HTTP (sent to HTTPS), and nothing was recorded for it
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    assert not Action.objects.exists()


def test_the_proxy_saying_https_makes_the_request_secure(client, behind_proxy, db):
    response = client.get(reverse("login"), REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 200
    assert response.cookies["csrftoken"]["secure"] is True
    assert response["Strict-Transport-Security"].startswith("max-age=")

import logging

from django.shortcuts import render

log = logging.getLogger(__name__)


def provider_unreachable(request, provider, error):
    """The identity provider did not answer: say so, and how to get in meanwhile."""
    log.warning("single sign-on: %s cannot be reached: %s", provider.name, type(error).__name__)
    return render(
        request,
        "socialaccount/provider_unreachable.html",
        {"provider": provider},
        status=503,
    )

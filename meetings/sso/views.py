import requests
from allauth.account.internal.decorators import login_not_required
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from django.http import Http404

from meetings.middleware import client_address
from meetings.models import AccessEvent, record_access

from .errors import provider_unreachable
from .provider import SSOOAuth2Adapter

PROVIDER_ID = "sso"


@login_not_required
def login(request):
    try:
        return OAuth2LoginView.adapter_view(SSOOAuth2Adapter(request, PROVIDER_ID))(request)
    except SocialApp.DoesNotExist:
        raise Http404("Single sign-on is not set up") from None


@login_not_required
def callback(request):
    # The token endpoint's and the keys' outages are allauth's RequestException branch (an
    # "authentication error" page); the discovery document is read before it, outside allauth's
    # handling, and would be a 500.
    adapter = SSOOAuth2Adapter(request, PROVIDER_ID)
    try:
        return OAuth2CallbackView.adapter_view(adapter)(request)
    except SocialApp.DoesNotExist:
        raise Http404("Single sign-on is not set up") from None
    except requests.RequestException as e:
        provider = adapter.get_provider()
        record_access(
            AccessEvent.Kind.SIGN_IN_FAILED,
            client_ip=client_address(request.META),
            success=False,
            provider=provider.name,
            reason="the identity provider could not be reached",
            error=type(e).__name__,
        )
        return provider_unreachable(request, provider, e)

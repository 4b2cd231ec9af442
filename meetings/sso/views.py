from allauth.account.internal.decorators import login_not_required
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from django.http import Http404

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
    # The token endpoint's and the keys' outages are allauth's RequestException branch: an
    # "authentication error" page (socialaccount/authentication_error.html), not a 500.
    try:
        return OAuth2CallbackView.adapter_view(SSOOAuth2Adapter(request, PROVIDER_ID))(request)
    except SocialApp.DoesNotExist:
        raise Http404("Single sign-on is not set up") from None

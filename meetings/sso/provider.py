"""allauth's OpenID Connect provider, stricter.

allauth 65 sends no nonce and, since the ID token comes straight from the token endpoint, skips its
signature. Here every sign-in sends a fresh nonce (kept in the sign-in's state and compared with
the token's in adapter.SSOAdapter.pre_social_login) and the token's signature is checked against
the provider's published keys, besides allauth's issuer, audience and expiry checks. A provider
that cannot be reached answers with a page saying so (503), not a 500.
"""

import secrets

import requests
from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from allauth.utils import build_absolute_uri
from django.urls import reverse
from django.utils.http import urlencode

from .errors import provider_unreachable


class SSOOAuth2Adapter(OpenIDConnectOAuth2Adapter):
    def _decode_id_token(self, app, id_token):
        return jwtkit.verify_and_decode(
            credential=id_token,
            keys_url=self.openid_config["jwks_uri"],
            issuer=self.openid_config["issuer"],
            audience=app.client_id,
            lookup_kid=jwtkit.lookup_kid_jwk,
            verify_signature=True,
        )

    def get_callback_url(self, request, app):
        return build_absolute_uri(request, reverse("sso_callback"), self.redirect_uri_protocol)


class SSOProvider(OpenIDConnectProvider):
    id = "sso"
    name = "Single sign-on"
    oauth2_adapter_class = SSOOAuth2Adapter

    def get_login_url(self, request, **kwargs):
        url = reverse("sso_login")
        return f"{url}?{urlencode(kwargs)}" if kwargs else url

    def get_callback_url(self):
        return reverse("sso_callback")

    def redirect(self, request, process, next_url=None, data=None, **kwargs):
        nonce = secrets.token_urlsafe(32)
        auth_params = kwargs.pop("auth_params", None)
        if auth_params is None:
            auth_params = self.get_auth_params()
        auth_params = {**auth_params, "nonce": nonce}
        try:
            return super().redirect(
                request, process, next_url, data, auth_params=auth_params, nonce=nonce, **kwargs
            )
        except requests.RequestException as e:
            # The discovery document (or the keys) could not be fetched.
            return provider_unreachable(request, self, e)


provider_classes = [SSOProvider]

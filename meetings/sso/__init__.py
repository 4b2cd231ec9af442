"""Single sign-on with the organisation's OpenID Connect provider (django-allauth's OpenID Connect
provider, with a nonce, signature checks and the provider's outages answered with a page)."""

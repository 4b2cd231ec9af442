"""Monitoring endpoints: /healthz for load balancers and uptime checks, /metrics for Prometheus.

Both answer staff users (session) and holders of the monitoring token
(`Authorization: Bearer <METRICS_TOKEN>`) in full. /healthz also answers anyone else, with
booleans and counts only (no host, account or error text); /metrics answers no one else
(401 without credentials, 403 for a signed-in non-staff user).

/healthz runs every check (database, broker, worker, accounts) and answers 200 or 503; a load
balancer that should only drop an instance whose own dependencies fail asks for a subset:
`/healthz?check=database&check=broker`.
"""

import hmac

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .. import health, metrics


def _bearer_token(request):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _monitoring_access(request):
    """Who is asking: "granted" (staff or the monitoring token), "denied" (a wrong token, or
    signed in without staff) or "anonymous"."""
    token = _bearer_token(request)
    expected = settings.METRICS_TOKEN
    if token is not None:
        if expected and hmac.compare_digest(token.encode(), expected.encode()):
            return "granted"
        return "denied"
    user = request.user
    if user.is_authenticated:
        return "granted" if user.is_active and user.is_staff else "denied"
    return "anonymous"


@never_cache
@require_safe
def healthz(request):
    names = request.GET.getlist("check") or list(health.CHECKS)
    unknown = [n for n in names if n not in health.CHECKS]
    if unknown:
        return JsonResponse(
            {
                "status": "error",
                "error": f"unknown check {unknown[0][:50]!r}; known: {', '.join(health.CHECKS)}",
            },
            status=400,
        )
    detailed = _monitoring_access(request) == "granted"
    healthy, report = health.run_checks(dict.fromkeys(names), detailed=detailed)
    return JsonResponse(report, status=200 if healthy else 503)


@never_cache
@require_safe
def metrics_view(request):
    access = _monitoring_access(request)
    if access == "anonymous" or (access == "denied" and _bearer_token(request) is not None):
        response = HttpResponse("Authentication required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if access == "denied":
        return HttpResponse("Staff only.\n", status=403, content_type="text/plain")
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
]

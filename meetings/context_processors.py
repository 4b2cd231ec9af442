"""Template context for every page."""

from django.utils.functional import SimpleLazyObject


def zoom_connections(request):
    """`accounts_needing_reconnect`: the Zoom accounts whose credentials Zoom refused.

    base.html shows a banner with a Reconnect button for each, to everyone who may see the
    dashboard (only admins can act on it). Lazy: pages that don't render it make no query.
    """

    def accounts():
        from .access import restrict
        from .models import ZoomAccount
        from .views.access import can_view
        from .views.connections import can_manage_connections

        user = getattr(request, "user", None)
        if user is None or not (can_view(user) or can_manage_connections(user)):
            return []
        needing = ZoomAccount.objects.filter(status=ZoomAccount.Status.NEEDS_RECONNECT)
        if not can_manage_connections(user):
            needing = restrict(needing, user)  # only the connections this user may see
        return list(needing.only("id", "name", "status", "kind"))

    return {"accounts_needing_reconnect": SimpleLazyObject(accounts)}

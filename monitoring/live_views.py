from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render

from monitoring.relay import EVENT_TYPES

ROWS_KEPT = 500


@staff_member_required
def live_events(request):
    """The page is a shell: rows arrive over the /ws/events/ websocket (static/monitoring/live.js)."""
    context = {"event_types": EVENT_TYPES, "rows_kept": ROWS_KEPT}
    return render(request, "monitoring/live.html", context)

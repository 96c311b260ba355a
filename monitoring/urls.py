from django.urls import path

from monitoring import live_views, views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("dashboard/live/", live_views.live_events, name="live-events"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("metrics", views.metrics, name="metrics"),
]

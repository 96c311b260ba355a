from django.urls import path

from monitoring.consumers import LiveEventsConsumer

websocket_urlpatterns: list = [
    path("ws/events/", LiveEventsConsumer.as_asgi()),
]

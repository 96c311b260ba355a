from django.contrib import admin
from django.urls import include, path

from masking import proxy

urlpatterns = [
    path("admin/", admin.site.urls),
    path("v1/messages", proxy.messages, name="proxy-messages"),
    path("v1/messages/count_tokens", proxy.count_tokens, name="proxy-count-tokens"),
    path("api/", include("masking.urls")),
    path("", include("monitoring.urls")),
]

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from masking.api import MaskView, UnmaskView

urlpatterns = [
    path("v1/mask", MaskView.as_view(), name="api-mask"),
    path("v1/unmask", UnmaskView.as_view(), name="api-unmask"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

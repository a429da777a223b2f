from django.conf import settings
from django.urls import include, path, re_path

from ketaclinic.accounts import views as account_views
from ketaclinic.site import views

urlpatterns = [
    path("", account_views.home, name="home"),
    path("accounts/", include("ketaclinic.accounts.urls")),
    path("patients/", include("ketaclinic.patients.urls")),
    path("audit/", include("ketaclinic.audit.urls")),
    path("ledger/", include("ketaclinic.inventory.urls")),
    path("dosing/", include("ketaclinic.dosing.urls")),
    path("", include("ketaclinic.measures.urls")),
    path("", include("ketaclinic.portal.urls")),
    path("", include("ketaclinic.treatment.urls")),
    path("fhir/", include("ketaclinic.fhir.urls")),
    path("health/", views.health, name="health"),
    path("floor/", views.floor, name="floor"),
]

if settings.SERVE_STATIC:
    # Fallback for `ketaclinic serve` without a proxy; granian serves /static/ itself.
    urlpatterns.append(re_path(r"^static/(?P<path>.*)$", views.static_file))

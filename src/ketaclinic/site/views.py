from __future__ import annotations

from django.contrib.staticfiles.views import serve as staticfiles_serve
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_http_methods

from ketaclinic.accounts.access import public, requires
from ketaclinic.accounts.models import Clinic


@public
@require_http_methods(["GET"])
def health(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@requires(None)
@require_http_methods(["GET"])
def floor(request: HttpRequest) -> HttpResponse:
    """The benchmark floor: signed in, one indexed query, a tiny response."""
    name = Clinic.objects.filter(pk=request.clinic.pk).values_list("name", flat=True).first()  # type: ignore[attr-defined]
    return JsonResponse({"clinic": name})


@public
@require_http_methods(["GET", "HEAD"])
def static_file(request: HttpRequest, path: str) -> HttpResponse:
    """Static files straight from the packages, for `ketaclinic serve` without a proxy."""
    response = staticfiles_serve(request, path, insecure=True)
    response["Cache-Control"] = "public, max-age=3600"
    return response

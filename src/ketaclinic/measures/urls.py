from django.urls import path

from ketaclinic.measures import views

app_name = "measures"
urlpatterns = [
    path("patients/<int:patient_id>/scales/", views.scale_list, name="list"),
    path("patients/<int:patient_id>/scales/record/", views.scale_record, name="record"),
    path("patients/<int:patient_id>/scales/<int:response_id>/", views.scale_detail, name="detail"),
    path("patients/<int:patient_id>/scales/send/", views.self_report_request, name="request"),
    path("alerts/", views.alert_queue, name="alerts"),
    path("alerts/<int:alert_id>/", views.alert_detail, name="alert"),
    path(
        "api/patients/<int:patient_id>/scale-responses",
        views.api_record_response,
        name="api_record",
    ),
]

from django.urls import path

from ketaclinic.patients import views

app_name = "patients"
urlpatterns = [
    path("", views.patient_list, name="list"),
    path("search/", views.patient_search, name="search"),
    path("new/", views.patient_create, name="create"),
    path("<int:patient_id>/", views.patient_chart, name="chart"),
    path("<int:patient_id>/edit/", views.patient_edit, name="edit"),
    path("<int:patient_id>/history/", views.patient_history, name="history"),
    path("<int:patient_id>/measurements/", views.measurement_list, name="measurements"),
    path("<int:patient_id>/measurements/add/", views.measurement_add, name="measurement_add"),
]

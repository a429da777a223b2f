from django.urls import path

from ketaclinic.treatment import views

app_name = "treatment"
urlpatterns = [
    path("patients/<int:patient_id>/courses/", views.patient_courses, name="patient_courses"),
    path("patients/<int:patient_id>/eligibility/new/", views.assessment_new, name="assessment_new"),
    path(
        "patients/<int:patient_id>/eligibility/<int:assessment_id>/",
        views.assessment_detail,
        name="assessment",
    ),
    path(
        "patients/<int:patient_id>/eligibility/<int:assessment_id>/course/",
        views.course_new,
        name="course_new",
    ),
    path("courses/<int:course_id>/", views.course_detail, name="course"),
    path("appointments/<int:appointment_id>/book/", views.appointment_book, name="book"),
    path("appointments/<int:appointment_id>/cancel/", views.appointment_cancel, name="cancel"),
    path("calendar/", views.calendar_view, name="calendar"),
    path("chairs/", views.chair_list, name="chairs"),
]

from django.urls import path

from ketaclinic.dosing import views

app_name = "dosing"
urlpatterns = [
    path("board/", views.board, name="board"),
    path("board/rows/", views.board_rows, name="board_rows"),
    path("appointments/<int:appointment_id>/check-in/", views.check_in, name="check_in"),
    path("sessions/<int:session_id>/", views.session_detail, name="session"),
    path("sessions/<int:session_id>/rems-form/", views.pmf_detail, name="pmf"),
    path("sessions/<int:session_id>/after-care/", views.aftercare, name="aftercare"),
    path("rems-forms/", views.pmf_list, name="pmf_list"),
    path("settings/", views.settings_view, name="settings"),
]

from django.urls import path

from ketaclinic.fhir import views

app_name = "fhir"
urlpatterns = [
    path("Questionnaire", views.questionnaire_search, name="questionnaires"),
    path("Questionnaire/<str:code>", views.questionnaire_read, name="questionnaire"),
    path(
        "QuestionnaireResponse/<int:response_id>",
        views.questionnaire_response_read,
        name="questionnaire_response",
    ),
    # A FHIR-style operation on the instance: the Observations derived from the response.
    path(
        "QuestionnaireResponse/<int:response_id>/$observations",
        views.response_observations,
        name="observations",
    ),
]

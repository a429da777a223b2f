from django.apps import AppConfig


class TreatmentConfig(AppConfig):
    name = "ketaclinic.treatment"
    label = "treatment"
    verbose_name = "Eligibility, treatment courses and scheduling"

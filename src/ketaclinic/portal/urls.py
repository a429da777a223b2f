from django.urls import path

from ketaclinic.portal import views

app_name = "portal"
urlpatterns = [
    path("p/<str:token>/", views.open_link, name="open"),
    path("portal/verify/", views.verify, name="verify"),
    path("portal/scale/<int:number>/", views.scale, name="scale"),
    path("portal/done/", views.done, name="done"),
]

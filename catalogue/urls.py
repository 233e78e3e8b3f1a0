from django.urls import re_path

from catalogue.views import BotDefaultsView, SystemModelsView

app_name = "catalogue"

urlpatterns = [
    re_path(r"^system/models/?$", SystemModelsView.as_view(), name="system-models"),
    re_path(r"^system/bot-defaults/?$", BotDefaultsView.as_view(), name="system-bot-defaults"),
]

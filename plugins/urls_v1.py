from django.urls import re_path

from plugins.views import PluginSettingsV1View

app_name = "plugins_v1"

urlpatterns = [
    re_path(r"^plugins/settings/?$", PluginSettingsV1View.as_view(), name="plugin-settings"),
]

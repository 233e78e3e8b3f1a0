from django.urls import re_path

from core.routers import ApiRouter
from core.system_views import BotDefaultsView, SystemModelsView

router = ApiRouter()

urlpatterns = [
    re_path(r"^system/models/?$", SystemModelsView.as_view(), name="system-models"),
    re_path(r"^system/bot-defaults/?$", BotDefaultsView.as_view(), name="system-bot-defaults"),
    *router.urls,
]

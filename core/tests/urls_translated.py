"""Test-only routes whose resolution depends on the active language (core.handlers never remembers it)."""

from django.http import HttpResponse
from django.urls import path
from django.utils.translation import gettext_lazy


def hello(request):
    return HttpResponse("hello")


urlpatterns = [path(gettext_lazy("hello/"), hello)]

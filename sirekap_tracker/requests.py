"""The request type of views that read request.htmx (set by django_htmx's middleware), for the
type checker: django-htmx's own advice, as Django's HttpRequest does not know the attribute."""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


class UrlLocaleMiddleware(LocaleMiddleware):
    """The language comes from the URL alone: its prefix (/en/...), else LANGUAGE_CODE.

    Django's LocaleMiddleware reads the language cookie and Accept-Language on paths without a
    prefix (the API, the admin) and marks every such answer `Vary: Accept-Language`. Here the
    URL decides everything, so that header would only make every cache keep one copy of a
    public page per browser language, all the same.
    """

    def process_request(self, request):
        language = translation.get_language_from_path(request.path_info)
        translation.activate(language or settings.LANGUAGE_CODE)
        request.LANGUAGE_CODE = translation.get_language()

    def process_response(self, request, response):
        response.headers.setdefault("Content-Language", translation.get_language())
        return response

"""Refusals in words people read: a sentence marked for translation with its values, said in
English where the API's `error` and the logs want it and in the reader's language on a page
(and in the API's `pesan`, in Indonesian, for the officers who read it)."""

from django.utils import translation
from django.utils.translation import gettext


class Words:
    """A sentence marked with gettext_noop and its values (which may be Words themselves), said in
    the active language each time it is turned into text."""

    def __init__(self, template: str, **values) -> None:
        self.template = template
        self.values = values

    def __str__(self) -> str:
        said = gettext(self.template)
        return said % {name: str(value) for name, value in self.values.items()}

    def said_in(self, language: str) -> str:
        with translation.override(language):
            return str(self)


class Refused(Exception):
    """Something refused with the HTTP status that says why; str() is the English sentence."""

    def __init__(self, template: str, status: int = 400, **values) -> None:
        self.words = Words(template, **values)
        self.status = status
        super().__init__(self.words.said_in("en"))

    def text(self) -> str:
        """The sentence in the active language."""
        return str(self.words)

from django import forms
from django.utils.translation import gettext_lazy as _

from regions.models import ContestKind


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A field taking every page the person picked; the pages are checked by the service."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "widget", MultipleFileInput(attrs={"accept": "image/jpeg,image/png,application/pdf"})
        )
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(file, initial) for file in files if file]


class UploadForm(forms.Form):
    tps = forms.CharField(
        label=_("TPS code"),
        max_length=17,
        help_text=_("13 digits: the village code and the TPS number, e.g. 6409032002001."),
    )
    contest = forms.ChoiceField(label=_("Contest"), choices=ContestKind.choices)
    file = MultipleFileField(
        label=_("Pages of the result form"),
        help_text=_("JPEG, PNG or PDF; at most 10 MB a page and 20 pages."),
    )

    def clean_tps(self) -> str:
        # People copy codes in the dotted Kemendagri form (64.09.03.2002.001) too.
        return self.cleaned_data["tps"].replace(".", "").strip()

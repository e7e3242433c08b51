from django import forms
from django.utils.translation import gettext_lazy as _

from regions.models import ContestKind
from regions.selectors import contest_kinds_held, tps_choices

# The TPS of a region are offered as a list when there are at most this many (a kecamatan has
# a few hundred; a kabupaten up to a few thousand).
TPS_LISTED = 3000


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
    """A result form's pages for one TPS and contest, by a person: the TPS picked from the
    user's region (a list to search by name or code when it is short enough), the contests open
    there, and a reason when the document replaces a published one or was sent for another TPS.
    Everything else is checked by the service (uploads.services.intake)."""

    tps = forms.CharField(
        label=_("TPS"),
        max_length=17,
        help_text=_("Type the TPS name, village or 13-digit code, e.g. 6409032002001."),
    )
    contest = forms.ChoiceField(label=_("Contest"), choices=ContestKind.choices)
    file = MultipleFileField(
        label=_("Pages of the result form"),
        help_text=_("JPEG, PNG or PDF; at most 10 MB a page and 20 pages."),
    )
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=500,
        help_text=_(
            "Needed when this replaces a published document (e.g. a blurry photo taken again), "
            "or when the same document was already sent for another TPS and truly belongs here."
        ),
    )
    # The SHA-256 of the document the person saw when they opened the form, if any: a document
    # that changed since is not replaced unseen.
    based_on = forms.CharField(required=False, widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, region: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tps_list = tps_choices(region, limit=TPS_LISTED)
        if self.tps_list is not None:
            self.fields["tps"].widget.attrs["list"] = "tps-choices"
            if len(self.tps_list) == 1:
                self.fields["tps"].initial = self.tps_list[0][0]
        held = contest_kinds_held(region)
        contest = self.fields["contest"]
        if held and isinstance(contest, forms.ChoiceField):
            contest.choices = held
        self.fields["tps"].widget.attrs["autocomplete"] = "off"

    def clean_tps(self) -> str:
        # People copy codes in the dotted Kemendagri form (64.09.03.2002.001) too, or pick a TPS
        # from the list, whose text starts with its code.
        return self.cleaned_data["tps"].split(" ")[0].replace(".", "").strip()

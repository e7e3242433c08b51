"""What the upload page's script (static/js/unggah*.js) needs from the server: every sentence it
shows, in the page's language (it has no translations of its own), and the static files its
service worker keeps for offline use. docs/uploads.md describes the page."""

from django.conf import settings
from django.templatetags.static import static
from django.utils.translation import gettext

from uploads.models import Status

# The files the upload page needs besides itself, kept by its service worker so that the page
# opens without a network. Hashed names in production: a deploy changes them, and so the worker.
PAGE_ASSETS = (
    "css/app.css",
    "css/unggah.css",
    "favicon.svg",
    "vendor/htmx/htmx.min.js",
    "js/live.js",
    "vendor/tus-js-client/tus.min.js",
    "js/unggah-photo.js",
    "js/unggah-store.js",
    "js/unggah.js",
)


def page_asset_urls() -> list[str]:
    return [static(name) for name in PAGE_ASSETS]


def phone_words() -> dict:
    """The sentences of the page's script, in the active language. `{name}` marks where the
    script puts a value."""
    return {
        "statuses": {value: str(label) for value, label in Status.choices},
        "on_phone": gettext("On the phone"),
        "preparing": gettext("Preparing the photo…"),
        "sending": gettext("Sending {percent}%"),
        "on_server": gettext("On the server"),
        "published": gettext("Published"),
        "page_n": gettext("Page {n}"),
        "move_up": gettext("Move page {n} up"),
        "move_down": gettext("Move page {n} down"),
        "remove": gettext("Remove page {n}"),
        "remove_document": gettext("Remove"),
        "remove_page_confirm": gettext("Remove page {n} from this phone?"),
        "remove_document_confirm": gettext(
            "Remove this document and its photos from this phone? What the server already "
            "received stays there."
        ),
        "back_to_pages": gettext("Back to the pages, to fix and send again"),
        "document_for": gettext("TPS {tps}, {contest}"),
        "document_waiting": gettext(
            "Waiting for the network: the photos are safe on this phone and are sent as soon "
            "as it returns."
        ),
        "document_sending": gettext("Sending…"),
        "document_checking": gettext("All pages sent; asking the server…"),
        "document_received": gettext(
            "Received by the server ({status}). The photos were removed from this phone."
        ),
        "document_published": gettext("Published on the public site."),
        "follow": gettext("Follow this TPS"),
        "document_refused": gettext("Refused by the server: {pesan}"),
        "document_retry_after": gettext(
            "Too many uploads just now; sending again in {seconds} s. The photos are safe on "
            "this phone."
        ),
        "document_server_error": gettext(
            "The server could not take it just now; trying again shortly. The photos are safe "
            "on this phone."
        ),
        "login_again": gettext(
            "Your session has ended: log in again to send. The photos stay on this phone."
        ),
        "added": gettext("Page {n} kept on this phone."),
        "not_readable": gettext("{name}: not a photo or PDF this phone can read."),
        "too_large": gettext("{name}: {size} MB, more than the {limit} MB allowed per page."),
        "too_many": gettext("At most {limit} pages per document."),
        "not_kept": gettext("This phone could not keep {name} ({error}); it was not added."),
        "no_pages": gettext("Take or pick at least one page first."),
        "no_target": gettext("Choose the TPS and the contest first."),
        "queued": gettext("Document for TPS {tps} kept on this phone and being sent."),
        "limits": {
            "page_bytes": settings.UPLOAD_MAX_PAGE_BYTES,
            "pages": settings.UPLOAD_MAX_PAGES,
        },
    }

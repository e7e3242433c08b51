"""A server process's start: what Django builds on first use is built before the first request,
then kept out of the garbage collector's full passes.

A full pass scans every object the process holds. In a web worker, 130,000 to 150,000 objects,
nearly all made at start and never freed, it took 80 to 100 ms of CPU and fell on whichever
request was being answered when it came due, about one in seventy: a 30 ms staff page took 130
(docs/performance.md, "The garbage collector's full passes"). gc.freeze() moves every object
that exists to a generation no pass scans, so a full pass scans only what came after; building
the templates, catalogs and URL patterns first puts them among the frozen, and spares the first
request of each worker their cost (200 ms).

Nothing here needs PostgreSQL or Redis: a worker must start while they are down.
"""

import gc
import sys
import time
from pathlib import Path

import structlog
from django.conf import settings
from django.template import TemplateDoesNotExist, TemplateSyntaxError, engines
from django.template.utils import get_app_template_dirs
from django.urls import get_resolver
from django.utils import translation

logger = structlog.get_logger(__name__)


def process_warm(process: str) -> None:
    """Builds what the first requests or tasks would, then freezes what the process holds."""
    started = time.perf_counter()
    templates = _templates_compile()
    for language, _ in settings.LANGUAGES:
        with translation.override(language):
            translation.gettext("Indonesia")  # loads the language's catalog
            get_resolver().reverse_dict  # noqa: B018 - builds the language's URL patterns
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    logger.info(
        "process warmed",
        process=process,
        templates=templates,
        objects_frozen=gc.get_freeze_count(),
        ms=round((time.perf_counter() - started) * 1000),
    )


def _templates_compile() -> int:
    """Every template of the project's own folders, compiled into Django's cached loader; the
    libraries' (the admin's) are left to the few who use them. A template that does not compile
    is left for its request to report, as it would be without this."""
    django = engines["django"]
    libraries = Path(sys.prefix).resolve()  # the environment's, inside the project or not
    folders: list[str | Path] = [*django.dirs, *get_app_template_dirs("templates")]
    ours = [
        folder
        for folder in (Path(each).resolve() for each in folders)
        if folder.is_relative_to(settings.BASE_DIR) and not folder.is_relative_to(libraries)
    ]
    compiled = 0
    for name in _template_names(ours):
        try:
            django.get_template(name)
        except (TemplateDoesNotExist, TemplateSyntaxError, UnicodeDecodeError):
            continue
        compiled += 1
    return compiled


def _template_names(folders: list[Path]) -> list[str]:
    names: set[str] = set()
    for folder in folders:
        names.update(
            path.relative_to(folder).as_posix()
            for path in folder.rglob("*")
            if path.suffix in {".html", ".js", ".txt", ".xml", ".json", ".svg"} and path.is_file()
        )
    return sorted(names)

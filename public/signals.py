"""What public does when the apps below it change what it shows outside the uploads, which the
snapshot's refresh follows by itself; connected in PublicConfig.ready()."""

import logging

from django.dispatch import receiver
from kombu.exceptions import OperationalError

from public import tasks
from regions.signals import candidates_replaced

logger = logging.getLogger(__name__)


@receiver(candidates_replaced, dispatch_uid="public-candidates-replaced")
def candidates_replaced_rebuild(sender, kind: str, **kwargs) -> None:
    """The workers rebuild the kind's candidate list, in the snapshot the web reads (an import
    may run in a process of another build of it: public.snapshots.build). Redis being down is
    no error of the import, which is committed: the warning says how to rebuild the list."""
    try:
        tasks.rebuild_public_candidates.delay(kind)
    except (OperationalError, ConnectionError, OSError) as error:
        logger.warning(
            "public snapshot %s: the rebuild of the candidate list could not be asked for (%s); "
            "once Redis is back, run: manage.py refresh_public_snapshot --all",
            kind,
            error,
        )

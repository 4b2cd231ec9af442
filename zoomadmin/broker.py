"""The embedded broker (kombu's filesystem transport), made safe for several processes.

kombu writes a message straight into the queue folder under its final name, and a consumer in
another process may pick the file up (move and read it) before the bytes are written: it reads
an empty or partial message, and the worker dies on "Unrecoverable error: JSONDecodeError".
This transport writes each message under a name consumers ignore, then renames it into place:
a rename within one folder is atomic, so a consumer sees a whole message or none.
"""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # "<name>.writing" does not end in ".<queue>.msg": consumers skip it until renamed.
        partial = final + ".writing"
        try:
            with open(partial, "wb", buffering=0) as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def install():
    """Make "filesystem://" broker URLs use this transport (in every process that imports the
    Celery app: web, worker, beat)."""
    TRANSPORT_ALIASES["filesystem"] = "zoomadmin.broker:Transport"

"""Signals the contacts layer sends upward (contacts never imports the layers built on it).

``contacts_changed`` is sent after the commit of any write that changed contacts or their
events, once the contacts are queued for refresh, with ``workspace_id`` and ``contact_ids`` (a
list of ints). It is for listeners that only need to hear of a change; receivers must be cheap
(enqueue background work and return). Work that must follow a change together with the read
models, in the refresh drain's transaction, registers a drain hook instead (``refresh.py``).
"""

import django.dispatch

contacts_changed = django.dispatch.Signal()

"""Signals the contacts layer sends upward (the segment engine listens; contacts never imports it).

``contacts_changed`` is sent after the commit of any write that changed contacts or their
events, with ``workspace_id`` and ``contact_ids`` (a list of ints). Receivers must be cheap:
they enqueue background work and return.
"""

import django.dispatch

contacts_changed = django.dispatch.Signal()

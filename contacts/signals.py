"""Signals the contacts layer sends upward (contacts never imports the layers built on it).

``contacts_changed`` is sent after the commit of any write that changed contacts or their
events, once the contacts are queued for refresh, with ``workspace_id`` and ``contact_ids`` (a
list of ints). It is for listeners that only need to hear of a change; receivers must be cheap
(enqueue background work and return). Work that must follow a change together with the read
models, in the refresh drain's transaction, registers a drain hook instead (``refresh.py``).

``changes_written`` is sent INSIDE the transaction of every such write, after its rows are
written and before the commit, so a listener can record what must leave the system in that same
transaction: it commits or rolls back with the change. (A layer that records every change, as
the webhooks outbox does, registers a change recorder instead,
``services.register_change_recorder``: its INSERT then rides in one of the write's own
statements and costs no round trip.) Arguments:
``workspace_id``, ``now`` (the write's time), ``contacts_created``, ``contacts_updated`` and
``contacts_erased`` (lists of ``Contact``; erased ones are sent just before their rows go) and
``events`` (a list of ``services.EventChange``). A receiver must cost a constant number of
statements per call (one bulk insert), whatever the batch size, and nothing when it has nothing
to record.

``demo_workspace_ready`` is sent by ``manage.py demo_setup`` (``make run``) once the demo
workspace is seeded, on every run, with ``workspace_id``: a higher layer gives the newcomer's
workspace what it owns (segments built from the templates, a computed RFM model). Receivers run
synchronously in the command, must be idempotent (leave a workspace that already has theirs
alone) and return a one-line summary of what they did (or "" for nothing), which the command
prints.
"""

import django.dispatch

contacts_changed = django.dispatch.Signal()
changes_written = django.dispatch.Signal()
demo_workspace_ready = django.dispatch.Signal()

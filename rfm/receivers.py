"""What RFM does when the contacts layer announces something (contacts never imports us).

One subscription, registered in ``RfmConfig.ready()``: the drain hook ``rfm.rescore`` of the
contacts refresh queue, in phase ``SCORE``, so segments' ``EVALUATE`` hook that runs after it in
the same drain (and transaction) sees the fresh scores. The drained contacts are re-scored under
every computed model of their workspace against the last full run's cut points.
"""

from contacts.refresh import DrainedContacts

from . import services


def rescore_drained_contacts(batch: DrainedContacts) -> None:
    services.rfm_rescore_contacts(workspace_id=batch.workspace_id, contact_ids=batch.contact_ids, now=batch.now)

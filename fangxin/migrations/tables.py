"""Every table of fangxin in one metadata, for Alembic's comparisons and the tests."""

from __future__ import annotations

from sqlalchemy import MetaData

from fangxin.db import Base
from fangxin.devices import models as devices_models
from fangxin.ingest import models as ingest_models
from fangxin.service import models as service_models
from fangxin.trace.certificates import entry_proofs
from fangxin.trace.certificates import models as certificates_models
from fangxin.trace.certificates import proofs as certificates_proofs
from fangxin.trace.notify import models as notify_models
from fangxin.trace.plan import models as plan_models
from fangxin.trace.results import followup_models
from fangxin.trace.results import models as results_models

# Imported for the tables they declare on Base.metadata.
AREAS = (
    devices_models,
    ingest_models,
    service_models,
    certificates_models,
    certificates_proofs,
    entry_proofs,
    notify_models,
    plan_models,
    followup_models,
    results_models,
)


def all_tables() -> MetaData:
    """Return the metadata holding every table of every area."""
    return Base.metadata

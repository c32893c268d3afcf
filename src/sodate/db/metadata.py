"""Every table of every capability, gathered for migrations and schema checks."""

from __future__ import annotations

import sqlalchemy as sa

from sodate import clock
from sodate.commerce import models as commerce_models
from sodate.conditions import models as condition_models
from sodate.consents import models as consent_models
from sodate.contacts import models as contact_models
from sodate.db.base import Base
from sodate.events import models as event_models
from sodate.handoff import models as handoff_models
from sodate.imports import models as import_models
from sodate.lifecycle import models as lifecycle_models
from sodate.queue import models as queue_models
from sodate.scoring import models as scoring_models
from sodate.segments import models as segment_models
from sodate.system import models as system_models
from sodate.workspaces import models as workspace_models

MODEL_MODULES = (
    clock,
    commerce_models,
    condition_models,
    consent_models,
    contact_models,
    event_models,
    handoff_models,
    import_models,
    lifecycle_models,
    queue_models,
    scoring_models,
    segment_models,
    system_models,
    workspace_models,
)

metadata: sa.MetaData = Base.metadata


def migrated_metadata(dialect: str) -> sa.MetaData:
    """What the migrations build in the database: on PostgreSQL the inbox's table too, which
    on SQLite is a file of its own (`sodate.events.inbox`)."""
    if dialect == "sqlite":
        return metadata
    combined = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in [*metadata.sorted_tables, *event_models.InboxBase.metadata.sorted_tables]:
        table.to_metadata(combined)
    return combined

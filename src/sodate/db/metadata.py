"""Every table of every capability, gathered for migrations and schema checks."""

from __future__ import annotations

import sqlalchemy as sa

from sodate import clock
from sodate.db.base import Base
from sodate.queue import models as queue_models
from sodate.system import models as system_models
from sodate.workspaces import models as workspace_models

MODEL_MODULES = (clock, queue_models, system_models, workspace_models)

metadata: sa.MetaData = Base.metadata

"""Imports every model module, so ``Base.metadata`` is complete (Alembic, tests)."""

from econtract.accounts import models as accounts_models
from econtract.audit import models as audit_models
from econtract.contracts import models as contracts_models
from econtract.credentials import models as credentials_models
from econtract.db import Base
from econtract.jobs import models as jobs_models
from econtract.parties import models as parties_models
from econtract.templates import models as templates_models

__all__ = ["Base", "accounts_models", "audit_models", "contracts_models", "credentials_models",
           "jobs_models", "parties_models", "templates_models"]

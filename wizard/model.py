"""The base of every answers model."""

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Unknown keys are errors and assignments are validated, so an edit can't go wrong."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

"""``GET /cost-analysis/v1/auth/scope``: what the caller's token may read and do.

The console asks it once at sign-in, to show the scope and offer Cancel only
to a token that may cancel. The answer is the token's entry of
``JOBTASK_API_TOKENS`` as the API applies it: ``workspace_ids`` null for a
token that reads its whole domain.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from worker.api.deps import CallerScope
from worker.api.models import Error
from worker.api.openapi import BEARER

SCOPE_PATH = "/cost-analysis/v1/auth/scope"


class ScopeInfo(BaseModel):
    """The caller's scope: every read is narrowed to it, whatever a body says."""

    domain_id: str
    workspace_ids: list[str] | None = Field(description="null: the whole domain")
    permissions: list[Literal["read", "cancel"]] = Field(description="cancel: may POST job/cancel")


router = APIRouter()


@router.get(SCOPE_PATH, name="auth_scope", summary="The token's scope", response_model=ScopeInfo,
            responses={401: {"description": "ERROR_AUTHENTICATE_FAILURE", "model": Error},
                       403: {"description": "ERROR_PERMISSION_DENIED", "model": Error}},
            openapi_extra={"security": BEARER})
async def auth_scope(scope: CallerScope) -> ScopeInfo:
    workspaces = list(scope.workspace_ids) if scope.workspace_ids is not None else None
    return ScopeInfo.model_validate({"domain_id": scope.domain_id, "workspace_ids": workspaces,
                                     "permissions": list(scope.permissions)})

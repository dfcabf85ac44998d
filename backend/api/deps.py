"""Dependencies: the services built at startup, and the write guard (API token).

@router.post("/train", dependencies=[WriteAccess])
def train(body: TrainCreate, jobs: JobServiceDep) -> JobPublic: ...
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from backend.services import (
    HealthService,
    JobService,
    ModelService,
    PredictionService,
    RetrainingService,
    RunService,
    Services,
    ServiceSettings,
)
from backend.services.access import InvalidTokenError, ReadOnlyError, check_write_access

__all__ = [
    "HealthServiceDep",
    "JobServiceDep",
    "ModelServiceDep",
    "PredictionServiceDep",
    "READ_ONLY_MESSAGE",
    "RetrainingServiceDep",
    "RunServiceDep",
    "ServicesDep",
    "SettingsDep",
    "WriteAccess",
    "require_token",
]

logger = logging.getLogger(__name__)

READ_ONLY_MESSAGE = "the API is read-only: set ML_API_TOKEN"

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <ML_API_TOKEN>")
_api_key = APIKeyHeader(name="X-API-Token", auto_error=False, description="X-API-Token: <ML_API_TOKEN>")


async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> ServiceSettings:
    return services.settings


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]


async def _models(services: ServicesDep) -> ModelService:
    return services.models


async def _runs(services: ServicesDep) -> RunService:
    return services.runs


async def _jobs(services: ServicesDep) -> JobService:
    return services.jobs


async def _predictions(services: ServicesDep) -> PredictionService:
    return services.predictions


async def _retraining(services: ServicesDep) -> RetrainingService:
    return services.retraining


async def _health(services: ServicesDep) -> HealthService:
    return services.health


ModelServiceDep = Annotated[ModelService, Depends(_models)]
RunServiceDep = Annotated[RunService, Depends(_runs)]
JobServiceDep = Annotated[JobService, Depends(_jobs)]
PredictionServiceDep = Annotated[PredictionService, Depends(_predictions)]
RetrainingServiceDep = Annotated[RetrainingService, Depends(_retraining)]
HealthServiceDep = Annotated[HealthService, Depends(_health)]


async def require_token(
    request: Request,
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key)],
) -> None:
    """403 when no token is configured (read-only API); 401 when the request's token is missing or
    wrong. The rule is :func:`backend.services.access.check_write_access`, shared with the dashboard."""
    supplied = bearer.credentials if bearer is not None else api_key
    try:
        check_write_access(settings, supplied, action=f"{request.method} {request.url.path}")
    except ReadOnlyError:
        raise HTTPException(status.HTTP_403_FORBIDDEN, READ_ONLY_MESSAGE) from None
    except InvalidTokenError:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid API token (send Authorization: Bearer <token> or X-API-Token)",
            headers={"WWW-Authenticate": "Bearer"},
        ) from None


#: Add to a state-changing route: ``dependencies=[WriteAccess]``.
WriteAccess = Depends(require_token)

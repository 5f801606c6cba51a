"""The ceiling of the HTTP layer: a FastAPI endpoint that validates a claim-shaped body and
answers 201, touching no database. Intake's filing rate is read against it."""

from __future__ import annotations

import uuid
from datetime import date

from fastapi import FastAPI
from pydantic import BaseModel


class Body(BaseModel):
    portal_dossier_id: str
    national_id: str
    full_name: str
    date_of_birth: date
    scheme: str
    commune_code: str


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/claims", status_code=201)
    async def file_claim(body: Body) -> dict[str, str]:
        return {
            "claim_id": str(uuid.uuid4()),
            "status": "RECEIVED",
            "portal_dossier_id": body.portal_dossier_id,
        }

    return app

"""``/auth/api-keys``: a user's own API keys for seed 004's signed login.

The secret is in the creation response and nowhere else afterwards; listing shows ids,
names and whether a key still works.
"""

from __future__ import annotations

from pydantic import Field

from fxgate.domain.timefmt import iso_ms
from fxgate.services.ports.store.records import ApiKey
from fxgate.web.rest import registry as op
from fxgate.web.rest.base import ApiHandler
from fxgate.web.rest.models import RequestModel, ResponseModel


class ApiKeyCreate(RequestModel):
    name: str = Field("", max_length=100, description="A label, e.g. the program's name.")


class ApiKeyOut(ResponseModel):
    id: str = Field(description="The public key id: the api_key a program sends.")
    name: str
    active: bool
    created_at: str
    revoked_at: str | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="Shown once: store it now.")


def _fields(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.key_id,
        "name": key.name,
        "active": key.active,
        "created_at": iso_ms(key.created_at.timestamp()),
        "revoked_at": iso_ms(key.revoked_at.timestamp()) if key.revoked_at else None,
    }


def key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut.model_validate(_fields(key))


class ApiKeysHandler(ApiHandler):
    path = "/auth/api-keys"
    tag = "auth"

    @op.get(summary="Your API keys (without secrets)", response=list[ApiKeyOut])
    async def list_api_keys(self) -> list[ApiKeyOut]:
        return [key_out(k) for k in await self.ctx.api_keys.list(self.user_id)]

    @op.post(
        summary="Create an API key for yourself",
        body=ApiKeyCreate,
        response=ApiKeyCreated,
        status=201,
    )
    async def create_api_key(self, body: ApiKeyCreate) -> op.Reply[ApiKeyCreated]:
        key = await self.ctx.api_keys.create(self.user_id, body.name, ip=self.client_ip)
        out = ApiKeyCreated.model_validate({**_fields(key), "secret": key.secret})
        return op.Reply(out, message="Store the secret now: it is not shown again")


class ApiKeyHandler(ApiHandler):
    path = "/auth/api-keys/{key_id}"
    tag = "auth"

    @op.delete(summary="Revoke one of your API keys", response=ApiKeyOut, errors=(404,))
    async def revoke_api_key(self, key_id: str) -> op.Reply[ApiKeyOut]:
        key = await self.ctx.api_keys.revoke(self.user_id, key_id, ip=self.client_ip)
        return op.Reply(key_out(key), message="API key revoked")


HANDLERS: tuple[type[ApiHandler], ...] = (ApiKeysHandler, ApiKeyHandler)

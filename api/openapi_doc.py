"""The OpenAPI document states every answer a route can give, including the ones that come from
the edge rather than the view: 401 (credentials), 404/403 (access to the discussion), 429 (rate
limits), 503 (Redis down), 400/413/415 (bodies) and 422 (validation, as ErrorBody).

Views declare what is theirs (201, 409, ...); this fills in the shared ones for every operation,
so an endpoint added later is documented, and the fuzzer holds it to that, without repeating it.
"""

from __future__ import annotations

from typing import Any

from flask_openapi3 import OpenAPI

from api.auth import is_public
from core.ground.models import CREATE_METADATA_SCHEMA, POST_METADATA_SCHEMA, ErrorBody
from protocols import supported

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "An API key (`dok_…`) or a JWT: `Authorization: Bearer <token>`"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
SECURITY = [{"bearer": []}, {"apiKey": []}]
REASONS = {
    400: "Malformed JSON",
    401: "Missing or invalid credentials",
    403: "The caller may see the discussion but lacks the permission",
    404: "Not found, or not visible to the caller",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Validation error",
    429: "Rate limit or quota exceeded (see Retry-After)",
    503: "The state store is unavailable (see Retry-After)",
}


def _error(status: int) -> dict[str, Any]:
    return {"description": REASONS[status], "content": {"application/json": {"schema": ERROR_REF}}}


class DocumentedApp(OpenAPI):
    """flask-openapi3's app with the edge's answers added to every operation."""

    def generate_spec_json(self) -> None:
        super().generate_spec_json()
        spec = self.spec_json
        components = spec.setdefault("components", {})
        components["securitySchemes"] = SECURITY_SCHEMES
        schemas = components.setdefault("schemas", {})
        if "ErrorBody" not in schemas:
            schemas["ErrorBody"] = ErrorBody.model_json_schema()
        self._apply_limits(schemas)
        public_paths = self._public_paths()
        for path, item in spec.get("paths", {}).items():
            for method, op in item.items():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                self._complete(path, method, op, public=path in public_paths)

    def _apply_limits(self, schemas: dict[str, Any]) -> None:
        """State this deployment's limits in the bodies' schemas, so valid input is accepted."""
        settings = self.extensions["orchestrator"].settings
        create = schemas.get("CreateDiscussion", {}).get("properties", {})
        if create:
            create.get("max_rounds", {})["maximum"] = settings.max_rounds_limit
            for key in ("agents", "humans"):
                if key in create:
                    create[key]["maxItems"] = min(create[key].get("maxItems", 10**6),
                                                  settings.max_participants)
            max_messages = create.get("max_messages", {})
            for branch in max_messages.get("anyOf", [max_messages]):
                if branch.get("type") == "integer":
                    branch["maximum"] = settings.max_messages_limit
            schemas["CreateDiscussion"]["anyOf"] = [
                {"required": ["agents"], "properties": {"agents": {"minItems": 1}}},
                {"required": ["humans"], "properties": {"humans": {"minItems": 1}}},
            ]
            schemas["CreateDiscussion"]["description"] = (
                "At least one agent or person; at most MAX_PARTICIPANTS of them in all.")
        # Every protocol field lists the protocols this build runs (the registry's names).
        for schema in schemas.values():
            for prop in (schema.get("properties") or {}).values():
                for option in [prop, *(prop.get("anyOf") or [])]:
                    if option.get("title") == "Protocol" and option.get("type") == "string":
                        option["enum"] = supported()
        # flask-openapi3's schema model drops `propertyNames`; put the metadata rules back.
        for name, rule in (("CreateDiscussion", CREATE_METADATA_SCHEMA),
                           ("PostMessage", POST_METADATA_SCHEMA)):
            meta = schemas.get(name, {}).get("properties", {}).get("metadata")
            if meta is not None:
                meta.update(rule)
        post = schemas.get("PostMessage", {}).get("properties", {})
        if "content" in post:
            post["content"]["maxLength"] = settings.max_message_chars

    def _public_paths(self) -> set[str]:
        out = set()
        for rule in self.url_map.iter_rules():
            if is_public(rule.endpoint):
                out.add(rule.rule.replace("<", "{").replace(">", "}"))
        return out

    @staticmethod
    def _complete(path: str, method: str, op: dict[str, Any], *, public: bool) -> None:
        responses = op["responses"]
        wanted = {503}
        if not public:
            wanted |= {401, 429}
            op["security"] = SECURITY
        if "{discussion_id}" in path:
            wanted.add(404)
            if method != "get":
                wanted.add(403)
        if op.get("requestBody"):
            wanted |= {400, 413, 415, 422}
        if op.get("parameters"):
            wanted.add(422)
        for status in sorted(wanted):
            key = str(status)
            if key not in responses:
                responses[key] = _error(status)
        if "422" in responses:  # flask-openapi3's default says a list; ours is an ErrorBody
            responses["422"] = _error(422)

"""The rapid-test item catalogue: items, per-category limits and the kits' reagent lots."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from fangxin.service import bodies
from fangxin.service.api.results import refuse_nul
from fangxin.service.auth import requires_role
from fangxin.service.context import db_session, state
from fangxin.service.openapi import Spec, json_response, path_param, query_param
from fangxin.service.paging import PAGE_PARAMS, listing, page_args, page_of, paged
from fangxin.service.problems import Problem, parse_body
from fangxin.trace.results import catalogue
from fangxin.trace.results.schemas import ItemBody, ItemIn, ItemOut, ReagentLotIn, ReagentLotOut

bp = Blueprint("catalogue", __name__, url_prefix="/api/v1")
bp.before_request(refuse_nul)


@bp.get("/catalogue")
def list_items() -> Response:
    """List the rapid-test item catalogue (public: labs' software reads the codes)."""
    include, page = request.args.get("retired") in ("1", "true"), page_args()
    items = page_of(catalogue.list_items(db_session(), include_retired=include), page)
    return paged([item.model_dump(mode="json") for item in items], page)


@bp.get("/catalogue/<code>")
def get_item(code: str) -> Response:
    """One catalogue item with its per-category limits."""
    item = catalogue.get_item(db_session(), code)
    if item is None:
        raise Problem(404, "Not Found", f"item {code} is not in the catalogue")
    return jsonify(item.model_dump(mode="json"))


@bp.put("/catalogue/<code>")
@requires_role("admin")
def put_item(code: str) -> tuple[Response, int]:
    """Create or replace an item (running processes pick it up within seconds)."""
    body = parse_body(ItemBody)
    session = db_session()
    created = catalogue.put_item(session, ItemIn(code=code, **body.model_dump()), state().clock())
    session.commit()
    item = catalogue.get_item(session, code)
    assert item is not None
    return jsonify(item.model_dump(mode="json")), 201 if created else 200


@bp.delete("/catalogue/<code>")
@requires_role("admin")
def retire_item(code: str) -> Response:
    """Retire an item: results naming it stay, new ones are refused."""
    session = db_session()
    if not catalogue.retire_item(session, code, state().clock()):
        raise Problem(404, "Not Found", f"item {code} is not in the catalogue")
    session.commit()
    return jsonify(code=code, active=False)


@bp.get("/catalogue/<code>/lots")
def list_lots(code: str) -> Response:
    """Return an item's reagent lots with their cut-offs (public, like the catalogue)."""
    if catalogue.get_item(db_session(), code) is None:
        raise Problem(404, "Not Found", f"item {code} is not in the catalogue")
    page = page_args()
    lots = page_of(catalogue.list_lots(db_session(), code), page)
    return paged([lot.model_dump(mode="json") for lot in lots], page)


@bp.put("/catalogue/<code>/lots/<lot>")
@requires_role("admin")
def put_lot(code: str, lot: str) -> tuple[Response, int]:
    """Register a reagent lot's cut-off (检出限) from its kit's leaflet; results record it."""
    body = parse_body(ReagentLotIn)
    session = db_session()
    try:
        created = catalogue.put_lot(session, code, lot, body, state().clock())
    except catalogue.CatalogueError as exc:
        raise Problem(422, "Cannot register this lot", str(exc)) from None
    session.commit()
    out = ReagentLotOut(item=code, lot=lot, **body.model_dump())
    return jsonify(out.model_dump(mode="json")), 201 if created else 200


def openapi(spec: Spec) -> None:
    """Describe this blueprint's operations."""
    spec.add(
        "get",
        "/api/v1/catalogue",
        "The item catalogue",
        {"200": listing(spec.ref(ItemOut))},
        secured=False,
        params=[query_param("retired"), *PAGE_PARAMS],
    )
    code = [path_param("code")]
    item = json_response(spec.ref(ItemOut))
    spec.add(
        "get",
        "/api/v1/catalogue/{code}",
        "A catalogue item",
        {"200": item},
        secured=False,
        params=code,
    )
    spec.add(
        "put",
        "/api/v1/catalogue/{code}",
        "Create or replace an item",
        {"200": item, "201": item},
        body=ItemBody,
        params=code,
    )
    spec.add(
        "delete",
        "/api/v1/catalogue/{code}",
        "Retire an item",
        {"200": json_response(bodies.RETIRED)},
        params=code,
    )
    lot_params = [path_param("code"), path_param("lot")]
    spec.add(
        "get",
        "/api/v1/catalogue/{code}/lots",
        "An item's reagent lots",
        {"200": listing(spec.ref(ReagentLotOut))},
        secured=False,
        params=[*code, *PAGE_PARAMS],
    )
    spec.add(
        "put",
        "/api/v1/catalogue/{code}/lots/{lot}",
        "Register a reagent lot's cut-off",
        {
            "200": json_response(spec.ref(ReagentLotOut)),
            "201": json_response(spec.ref(ReagentLotOut)),
        },
        body=ReagentLotIn,
        params=lot_params,
    )

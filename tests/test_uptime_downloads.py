"""The dashboard's uptime download buttons give the API's files, within the viewer's district."""

from __future__ import annotations

import csv
import io
import re

from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session, sessionmaker

from tests.pages_helpers import login, seed_city
from tests.trace_helpers import auth, key


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def test_buttons_give_the_api_files(client: FlaskClient, sessions: sessionmaker[Session]) -> None:
    seed_city(sessions)
    admin = key(sessions, "admin")
    assert login(client, "admin") == 302
    page = client.get("/").get_data(as_text=True)
    links = re.findall(r'href="(/uptime\.[^"]+)"', page)
    assert sorted(links) == sorted(
        ["/uptime.xlsx", "/uptime.csv", "/uptime.xlsx?by=device", "/uptime.csv?by=device"]
    )
    for by, id_header in (("site", "单位编号"), ("device", "设备编号")):
        mine = client.get(f"/uptime.csv?by={by}")
        assert mine.status_code == 200
        api = client.get(f"/api/v1/uptime?format=csv&by={by}", headers=auth(admin))
        ours, theirs = _rows(mine.data), _rows(api.data)
        assert [r[id_header] for r in ours] == [r[id_header] for r in theirs]
        assert list(ours[0]) == list(theirs[0])
    book = load_workbook(io.BytesIO(client.get("/uptime.xlsx?by=device").data))
    devices = {r[0] for r in book["设备"].iter_rows(min_row=2, values_only=True)}
    assert devices == {"rt-1", "rt-2", "cam-1", "cam-2"}


def test_a_district_viewer_downloads_its_district(
    client: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    seed_city(sessions)
    assert login(client, "xinhua") == 302
    sites = {r["单位编号"] for r in _rows(client.get("/uptime.csv").data)}
    assert sites == {"m-001", "k-1"}
    assert client.get("/uptime.csv?district=卫东区").status_code == 403
    assert client.get("/uptime.pdf").status_code == 404

"""Long CLI imports: progress on stderr every 1,000 rows, then a summary naming each refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fangxin.cli import main
from fangxin.devices.models import Device, Site
from tests.helpers import register

N_SITES = 2100
BAD_SITE_LINES = {2, 700, 1501, 2101}  # line 1 is the header


@pytest.fixture
def runner(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FANGXIN_DATABASE_URL", db_url)
    monkeypatch.setenv("FANGXIN_DATA_DIR", str(tmp_path))
    return CliRunner()


def test_sites_import_progress_and_summary(
    runner: CliRunner, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = ["id,kind,district,name,category"]
    for line in range(2, N_SITES + 2):
        kind = "mall" if line in BAD_SITE_LINES else "market"
        rows.append(f"m-{line:05d},{kind},新华区,市场{line},")
    path = tmp_path / "sites.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = runner.invoke(main, ["sites", "import", str(path)])
    assert out.exit_code == 0, out.output
    assert out.stderr.splitlines() == [
        f"importing sites: 1000 of {N_SITES} rows",
        f"importing sites: 2000 of {N_SITES} rows",
    ]
    lines = out.stdout.splitlines()
    assert lines[0] == f"{N_SITES - 4} sites imported, 4 rows refused"
    assert [x.split(":")[0] for x in lines[1:]] == [f"line {n}" for n in sorted(BAD_SITE_LINES)]
    assert all("kind: Input should be 'market' or 'kitchen'" in x for x in lines[1:]), lines
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Site)) == N_SITES - 4
        assert session.get(Site, "m-00700") is None
        assert session.get(Site, "m-00701") is not None


def test_devices_import_summary(
    runner: CliRunner, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    register(sessions, "k-1", {}, kind="kitchen")
    path = tmp_path / "devices.csv"
    path.write_text(
        "id,site,kind\ncam-1,k-1,camera\ncam-2,k-9,camera\ncam-3,k-1,toaster\ncam-4,k-1,nvr\n",
        encoding="utf-8",
    )
    out = runner.invoke(main, ["devices", "import", str(path)])
    assert out.exit_code == 0, out.output
    assert out.stderr == ""  # under 1,000 rows: no progress line
    lines = out.stdout.splitlines()
    assert lines[1] == "2 devices imported, 2 rows refused"
    assert lines[2] == "line 3 (cam-2): site k-9 is not registered"
    assert lines[3].startswith("line 4 (cam-3): kind: Input should be")
    assert len(lines) == 4
    with sessions() as session:
        assert sorted(session.scalars(select(Device.id))) == ["cam-1", "cam-4"]


def test_catalogue_import_summary(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text(
        "code,name_zh,method,standard,unit,quantitative,comparator,threshold\n"
        "histamine,组胺,比色法,GB 2733,mg/100g,1,gt,40\n"
        "broken,坏,x,y,%,maybe,ge,\n",
        encoding="utf-8",
    )
    out = runner.invoke(main, ["catalogue", "import", str(path)])
    assert out.exit_code == 1  # a refused item fails the command
    lines = out.stdout.splitlines()
    assert lines[0] == "1 items imported (1 new, 0 replaced), 1 refused"
    assert lines[1].startswith("item broken (line 3): ")
    assert len(lines) == 2

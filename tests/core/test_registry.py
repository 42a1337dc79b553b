"""registry.py: the stage lists the surfaces offer come from the registries, never typed twice (issue 18)."""

from fastapi.testclient import TestClient

from lasso_edit.core.registry import GROUNDERS, PARSERS

from ..helpers import run_cli


def test_the_page_offers_every_registered_grounder_a_new_one_included(tiny_editor, tmp_path, monkeypatch):
    from lasso_edit.server.app import ServerSettings, create_app

    class NearestGrounder:
        name = "nearest"
        label = "the nearest <thing>"
        needs = ()

    monkeypatch.setitem(GROUNDERS._items, "nearest", NearestGrounder)
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path))
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as client:
        page = client.get("/").text
    for name, label in GROUNDERS.labels().items():
        assert f'<option value="{name}">' in page
    assert "the nearest &lt;thing&gt;" in page  # escaped: a label is text, never markup


def test_the_cli_help_lists_every_registered_parser_and_grounder():
    from lasso_edit.cli import GROUNDER_OPT, PARSER_OPT

    assert PARSER_OPT.help.startswith(", ".join(PARSERS.names()) + " ")
    assert GROUNDER_OPT.help.startswith(", ".join(GROUNDERS.names()) + " ")
    r = run_cli("edit", "--help", env={"COLUMNS": "400"})
    assert "rules-first" in r.stdout and "attention" in r.stdout

"""JSON Lines: manifests read strictly, results logs tolerantly."""

import pytest

from lasso_edit.core.errors import InvalidInputError
from lasso_edit.core.jsonl import last_by_id, manifest_rows


def test_a_manifest_names_the_line_that_is_not_a_json_object(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text('\ufeff{"image": "a.png"}\n\n{"image": "b.png"}\n')
    assert manifest_rows(f) == [(1, {"image": "a.png"}), (3, {"image": "b.png"})]  # BOM and blank lines
    f.write_text('{"image": "a.png"}\n{"image": \n')
    with pytest.raises(InvalidInputError, match="m.jsonl line 2 is not JSON"):
        manifest_rows(f)
    f.write_text('{"image": "a.png"}\n["b.png"]\n')
    with pytest.raises(InvalidInputError, match="line 2: expected a JSON object"):
        manifest_rows(f)


def test_a_results_log_keeps_the_last_record_of_each_id_and_skips_a_torn_line():
    text = '{"id": "a", "n": 1}\n{"id": "b", "n": 1}\n{"id": "a", "n": 2}\n[1]\n{"id": "b", "n": 2'
    assert last_by_id(text) == {"a": {"id": "a", "n": 2}, "b": {"id": "b", "n": 1}}

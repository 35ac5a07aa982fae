"""The one table printer (zoo.core.text.table) that `zoo list`, `zoo cache`, `zoo eval` and `zoo bench` print with."""
from zoo.core.text import table


def test_columns_are_as_wide_as_their_widest_cell_with_a_rule_under_the_names():
    rows = [{"model": "ssdlite", "size": "4 MB"}, {"model": "fasterrcnn_resnet50_fpn", "size": ""}]
    assert table(rows, ["model", "size"]).splitlines() == [
        "model                    size",
        "-----------------------  ----",
        "ssdlite                  4 MB",
        "fasterrcnn_resnet50_fpn",
    ]
    assert table(rows, ["size", "model"], rule=False).splitlines()[0] == "size  model"

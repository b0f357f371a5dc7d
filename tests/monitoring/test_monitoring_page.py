"""docs/monitoring.md: the rules file it shows is one the parser accepts, and the gauges it
lists are the ones the server exports."""

from __future__ import annotations

import re
from pathlib import Path

from modelyard.monitoring.rules import parse_rules

PAGE = (Path(__file__).parents[2] / "docs" / "monitoring.md").read_text()


def test_the_rules_example_parses_as_written():
    (example,) = re.findall(r"```yaml\n(.*?)```", PAGE, flags=re.S)
    spec = parse_rules(example)
    assert len(spec.rules) == 8 and spec.rules[-1].trigger == "retrain-demand"
    assert spec.slice_columns() == ("region",)


def test_every_gauge_the_server_exports_is_listed():
    import modelyard.server.control.monitoring_metrics as gauges

    exported = set(re.findall(r'"(modelyard_\w+)"', Path(gauges.__file__).read_text()))
    exported |= {
        f"modelyard_{n}"
        for n in re.findall(r'_family\(\s*"(\w+)"', Path(gauges.__file__).read_text())
    }
    listed = set(re.findall(r"`(modelyard_\w+)`", PAGE))
    assert exported and exported <= listed, exported - listed

"""Self-metrics under the names every existing dashboard and alert already queries."""

import platform
import subprocess

from exporter.app import Exporter
from exporter.config import parse_config
from tests.helpers import sample


def test_standard_process_and_python_names_and_build_revision():
    e = Exporter(parse_config({}))
    text = e.render().text.decode()
    assert sample(e, "process_resident_memory_bytes") > 1 << 20
    assert sample(e, "process_open_fds") > 0
    impl = platform.python_implementation()
    assert "python_info{" in text and f'implementation="{impl}"' in text
    assert "mlpipe_process_" not in text
    rev = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert sample(e, "mlpipe_exporter_build_info", version="0.1.0", revision=rev) == 1

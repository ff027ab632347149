"""The chaos suite reuses the client tests' fixtures and destination adapters (tests/clients).

It runs on its own (`scripts/chaos.sh`), never together with tests/clients in one pytest session:
both directories have a conftest.py, and pytest would refuse the second one.
"""

import importlib.util
import sys
from pathlib import Path

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
sys.path.insert(0, str(CLIENTS))

_spec = importlib.util.spec_from_file_location("clients_conftest", CLIENTS / "conftest.py")
clients_conftest = importlib.util.module_from_spec(_spec)
sys.modules["clients_conftest"] = clients_conftest
_spec.loader.exec_module(clients_conftest)

# Fixtures (s3, bucket, hydrant_factory, ...) and helpers, also under the module name
# test_conformance.py imports them from (`from conftest import ...` finds this module).
from clients_conftest import *  # noqa: E402,F401,F403

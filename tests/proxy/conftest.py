"""The proxy's tests need websockets. Without it they are skipped on a developer's machine with the reason,
and fail in CI (``CI=true``), which installs the locked dependencies."""

import importlib.util
import os

import pytest

if importlib.util.find_spec("websockets") is None:
    WHY = "the metering proxy needs websockets (requirements.lock: websockets==17.4)"
    if os.environ.get("CI") == "true":
        pytest.fail(WHY, pytrace=False)
    pytest.skip(WHY, allow_module_level=True)

"""What the package's tests share."""
import os

import pytest

import mbmpo


@pytest.fixture
def cuda():
    """A CUDA case: skipped, with the reason, without a usable GPU; failed instead under
    MBMPO_REQUIRE_GPU=1 (so a GPU run cannot pass by skipping)."""
    info = mbmpo.info()
    if not info["cuda_usable"]:
        if os.environ.get("MBMPO_REQUIRE_GPU") == "1":
            pytest.fail("MBMPO_REQUIRE_GPU=1 but no CUDA device is usable: " + info["cuda_reason"])
        pytest.skip("CUDA case skipped, no usable device: " + info["cuda_reason"])

"""One torch thread for the optimizer tests: their tensors are tiny, and on a shared 2-core machine a second
thread makes them many times slower (measured 18x on a loaded machine). Restored afterwards."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

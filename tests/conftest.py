"""Fixtures shared by the test modules."""
import pytest


@pytest.fixture
def one_thread():
    """Run torch on one thread: tiny training steps are several times slower on two busy cores."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

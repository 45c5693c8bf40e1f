"""What several test modules share: the MNIST digits beside the checkout."""
from pathlib import Path

import pytest

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST digits not found in {MNIST}")

"""The ``mnist`` data source (four IDX files), registered from ``shared/mnist_files.py``.

The files' checksums and loader are shared: ``digit-pairs`` reads them as well.
"""

from __future__ import annotations

from wynerkit import BuildContext, NoParams, hookimpl
from wynerkit.datafiles import DataSource
from wynerkit.hookspecs import Register
from wynerkit_plugins.shared.mnist_files import MNIST_SOURCE


def mnist_source(params: NoParams, context: BuildContext) -> DataSource:
    """MNIST handwritten digits: four IDX files (60,000 train + 10,000 test), downloadable."""
    return MNIST_SOURCE


@hookimpl
def wynerkit_register_data_sources(register: Register) -> None:
    """Register the ``mnist`` data source."""
    register("mnist", mnist_source)

"""The ``svhn`` data source (three ``.mat`` files), registered from ``shared/svhn_files.py``.

The files' checksums and loader are shared: ``digit-pairs`` reads them as well.
"""

from __future__ import annotations

from wynerkit import BuildContext, NoParams, hookimpl
from wynerkit.datafiles import DataSource
from wynerkit.hookspecs import Register
from wynerkit_plugins.shared.svhn_files import SVHN_SOURCE


def svhn_source(params: NoParams, context: BuildContext) -> DataSource:
    """SVHN cropped digits: three MATLAB files (train, test, extra), downloadable."""
    return SVHN_SOURCE


@hookimpl
def wynerkit_register_data_sources(register: Register) -> None:
    """Register the ``svhn`` data source."""
    register("svhn", svhn_source)

"""One message for "you named a column that is not there", shared with the table reader.

Every column selection in monitoring (``columns=``, ``categorical=``, per-column ``methods`` and
``thresholds``, a Monitor's columns, CBPE's label and score columns) is checked through
:func:`check_columns`, so a typo is reported the same way everywhere (and the same way as an
unknown ``columns=`` name given to :func:`mloop.tables.read_table`), with the columns that do exist
and a close match when there is one.
"""

from __future__ import annotations

from mloop.tables import check_columns, unknown_columns_error

__all__ = ["check_columns", "unknown_columns_error"]

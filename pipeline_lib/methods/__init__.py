"""One module per paper: the adaptation algorithms, written against the TaskModel interface.

The folders params.yaml lists under ``method_paths`` are part of this package too (:mod:`pipeline_lib.plugins`).
"""

from pipeline_lib.plugins import extend

extend(__path__, "methods")

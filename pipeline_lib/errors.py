"""The one exception type a user should ever see from a stage.

A :class:`PipelineError` carries a single line that names the problem and the fix.
Stage entry points turn it into ``error: <line>`` on stderr and exit status 2;
anything else that escapes is a bug and keeps its traceback.
"""


class PipelineError(Exception):
    """A user-facing problem: bad params, missing or malformed data, unknown names."""

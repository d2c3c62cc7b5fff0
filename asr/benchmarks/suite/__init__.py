"""The pieces of ``asr benchmark all``: machine facts, the step runner, the digits data and
training helpers, the plan of steps and the report writer.

A package, not a module, so that ``asr benchmark`` does not list it as a benchmark kind.
"""

"""Use cases: one module per use case, each returning a typed result. No typer, no terminals, no exit codes.

Every command that changes the tenant goes through `pipeline.run` (plan -> save -> fresh check ->
confirm -> apply -> result).
"""

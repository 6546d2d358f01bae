"""``relay``: the operator command line (validate, send, poison, emulator).

Not deployed: the function app imports only ``shared``; this package depends on the core,
never the other way round.
"""

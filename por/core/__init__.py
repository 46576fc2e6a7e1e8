"""The pure core of por: no network, disk, environment, clock or randomness inside.

Callers pass bytes, integers, times and random values in; functions return values or
raise `por.errors` exceptions. Auditors and holders need only this package.
"""

"""The operator console: server-rendered pages under ``/console`` (on when
``admin.tokens`` is set).

``views`` holds the routes, ``auth`` the sessions, sign-in throttle and CSRF checks,
``pages`` the pure functions that turn store records into what a template shows, and
``security`` the headers every console answer carries.
"""
